import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, type Document } from 'yaml';
import { BridgeError } from '../errors.js';
import { ActionDefinitionError, compileAction, type RawAction } from './action.js';
import { compilePattern, type Pattern } from './pattern.js';
import { RuleSet, type DeliveryPolicy, type Rule } from './rule-set.js';
import { TemplateSyntaxError } from './template.js';

const require = createRequire(import.meta.url);
const schema = require('../../schemas/rules.schema.json') as object;
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(
  schema,
);

export interface RuleProblem {
  /** Where in the document, e.g. `rules[0].action.agentlessEmail.subject`. */
  readonly path: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly message: string;
}

/** A rules file that cannot be used, with every problem found (not just the first) and where it is. */
export class RulesFileError extends BridgeError {
  constructor(
    readonly source: string,
    readonly problems: readonly RuleProblem[],
  ) {
    super(
      'RULES_INVALID',
      `${source} has ${problems.length} problem(s):\n${problems.map((p) => `  ${format(source, p)}`).join('\n')}`,
    );
  }
}

interface RawRulesFile {
  readonly version: 1;
  readonly rules: readonly {
    name: string;
    topics: string[];
    match?: Pattern;
    action: RawAction;
    delivery?: DeliveryPolicy;
  }[];
}

export async function loadRulesFile(path: string): Promise<RuleSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RulesFileError(path, [
      { path: '', line: undefined, column: undefined, message: `cannot read the file (${reason})` },
    ]);
  }
  return parseRules(text, path);
}

/** Parses and validates a rules document (YAML, or JSON which YAML includes) into a RuleSet. */
export function parseRules(text: string, source: string): RuleSet {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset);

  if (doc.errors.length > 0) {
    throw new RulesFileError(
      source,
      doc.errors.map((e) => {
        const pos = position(e.pos[0]);
        return {
          path: '',
          line: pos?.line,
          column: pos?.col,
          message: e.message.split('\n', 1)[0] ?? e.message,
        };
      }),
    );
  }

  const data: unknown = doc.toJS();
  const at = (segments: readonly (string | number)[], message: string, key?: string): RuleProblem => {
    const pos = position(offsetOf(doc, segments, key));
    return {
      path: pathString(key ? [...segments, key] : segments),
      line: pos?.line,
      column: pos?.col,
      message,
    };
  };

  // Schema problems and compile problems (templates, names) are reported together: every rule that passed the
  // schema is compiled even when another did not, so one run shows the author every mistake.
  const problems: RuleProblem[] = [];
  const brokenRules = new Set<number>();
  if (!validate(data)) {
    const errors = validate.errors ?? [];
    problems.push(...schemaProblems(errors, at));
    for (const e of errors) {
      const index = /^\/rules\/(\d+)/.exec(e.instancePath)?.[1];
      if (index !== undefined) brokenRules.add(Number(index));
      else if (e.instancePath === '' || e.instancePath === '/rules') brokenRules.add(-1);
    }
  }
  const rawRules = isRulesArray(data) ? data.rules : [];
  const rules: Rule[] = [];
  const seen = new Set<string>();
  rawRules.forEach((rule, index) => {
    if (brokenRules.has(index) || brokenRules.has(-1)) return;
    if (seen.has(rule.name))
      problems.push(at(['rules', index, 'name'], `rule name "${rule.name}" is used twice`));
    seen.add(rule.name);
    try {
      rules.push({
        name: rule.name,
        topics: Object.freeze([...rule.topics]),
        matches: compilePattern(rule.match),
        action: compileAction(rule.action, 'action'),
        // Every action today is a message a person reads: a duplicate is worse than a gap, so at-most-once.
        delivery: rule.delivery ?? 'at-most-once',
      });
    } catch (error) {
      if (error instanceof TemplateSyntaxError) {
        problems.push(at(['rules', index, ...error.field.split('.')], error.message.replace(/^[^:]+: /, '')));
      } else if (error instanceof ActionDefinitionError) {
        problems.push(at(['rules', index, ...error.field.split('.')], error.message));
      } else {
        throw error;
      }
    }
  });
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (problems.length > 0) throw new RulesFileError(source, problems);
  return new RuleSet(rules);
}

/** Whether the rules array can be walked rule by rule (the top level passed the schema). */
function isRulesArray(data: unknown): data is RawRulesFile {
  return typeof data === 'object' && data !== null && Array.isArray((data as { rules?: unknown }).rules);
}

/** Custom wording where Ajv's would puzzle a rule author, keyed by the sub-schema that failed. */
const definitions = (schema as { definitions: Record<string, object> }).definitions;
const FRIENDLY: { schema: object | undefined; keyword: string; message: string }[] = [
  {
    schema: definitions['pattern'],
    keyword: 'type',
    message: 'must be a list of values (the event matches any of them) or a nested pattern object',
  },
  {
    schema: definitions['action'],
    keyword: 'minProperties',
    message: 'must hold exactly one action (agentlessEmail)',
  },
  {
    schema: definitions['action'],
    keyword: 'maxProperties',
    message: 'must hold exactly one action (agentlessEmail)',
  },
];

function schemaProblems(
  errors: readonly ErrorObject[],
  at: (segments: (string | number)[], message: string, key?: string) => RuleProblem,
): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue; // restates the then/else failure reported next to it
    const segments = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const friendly = FRIENDLY.find((f) => f.schema === e.parentSchema && f.keyword === e.keyword)?.message;
    let problem: RuleProblem;
    if (friendly) {
      problem = at(segments, friendly);
    } else if (e.keyword === 'additionalProperties') {
      const key = String(e.params['additionalProperty']);
      problem = at(segments, `unknown key "${key}"`, key);
    } else if (e.keyword === 'required') {
      problem = at(segments, `missing required key "${String(e.params['missingProperty'])}"`);
    } else if (e.keyword === 'const') {
      problem = at(segments, `must be ${JSON.stringify(e.params['allowedValue'])}`);
    } else {
      problem = at(segments, e.message ?? 'is invalid');
    }
    const id = `${problem.path}|${problem.message}`;
    if (!seen.has(id)) problems.push(problem);
    seen.add(id);
  }
  return problems;
}

/** Offset of the node at `segments` (or of its key `key`) in the source, for line/column reporting. */
function offsetOf(doc: Document, segments: readonly (string | number)[], key?: string): number | undefined {
  const node = segments.length === 0 ? doc.contents : doc.getIn(segments, true);
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find(
      (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === key,
    );
    if (pair && isNode(pair.key)) return pair.key.range?.[0];
  }
  return isNode(node) ? node.range?.[0] : undefined;
}

function pathString(segments: readonly (string | number)[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function format(source: string, p: RuleProblem): string {
  const where = p.line !== undefined ? `${source}:${p.line}:${p.column ?? 1}` : source;
  return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}
