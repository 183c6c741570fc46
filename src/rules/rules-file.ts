import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, type Document } from 'yaml';
import { BridgeError } from '../errors.js';
import { compileAction, type RawAction } from './action.js';
import { compilePattern, type Pattern } from './pattern.js';
import { RuleSet, type Rule } from './rule-set.js';
import { TemplateSyntaxError } from './template.js';

const require = createRequire(import.meta.url);
const schema = require('../../schemas/rules.schema.json') as object;
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(schema);

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
    super('RULES_INVALID', `${source} has ${problems.length} problem(s):\n${problems.map((p) => `  ${format(source, p)}`).join('\n')}`);
  }
}

interface RawRulesFile {
  readonly version: 1;
  readonly rules: readonly { name: string; topics: string[]; match?: Pattern; action: RawAction }[];
}

export async function loadRulesFile(path: string): Promise<RuleSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RulesFileError(path, [{ path: '', line: undefined, column: undefined, message: `cannot read the file (${reason})` }]);
  }
  return parseRules(text, path);
}

/** Parses and validates a rules document (YAML, or JSON which YAML includes) into a RuleSet. */
export function parseRules(text: string, source: string): RuleSet {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset));

  if (doc.errors.length > 0) {
    throw new RulesFileError(
      source,
      doc.errors.map((e) => {
        const pos = position(e.pos[0]);
        return { path: '', line: pos?.line, column: pos?.col, message: e.message.split('\n', 1)[0] ?? e.message };
      }),
    );
  }

  const data: unknown = doc.toJS();
  const at = (segments: readonly (string | number)[], message: string, key?: string): RuleProblem => {
    const pos = position(offsetOf(doc, segments, key));
    return { path: pathString(key ? [...segments, key] : segments), line: pos?.line, column: pos?.col, message };
  };

  if (!validate(data)) {
    throw new RulesFileError(source, schemaProblems(validate.errors ?? [], at));
  }

  const raw = data as unknown as RawRulesFile;
  const problems: RuleProblem[] = [];
  const rules: Rule[] = [];
  const seen = new Set<string>();
  raw.rules.forEach((rule, index) => {
    if (seen.has(rule.name)) problems.push(at(['rules', index, 'name'], `rule name "${rule.name}" is used twice`));
    seen.add(rule.name);
    try {
      rules.push({
        name: rule.name,
        topics: Object.freeze([...rule.topics]),
        matches: compilePattern(rule.match),
        action: compileAction(rule.action, 'action'),
      });
    } catch (error) {
      if (!(error instanceof TemplateSyntaxError)) throw error;
      const segments = ['rules', index, ...error.field.split('.')];
      problems.push(at(segments, error.message.replace(/^[^:]+: /, '')));
    }
  });
  if (problems.length > 0) throw new RulesFileError(source, problems);
  return new RuleSet(rules);
}

/** Custom wording where Ajv's would confuse a rule author. Keyed by the schema location of the failing keyword. */
const ANY_OF_MESSAGES: Record<string, string> = {
  '#/definitions/pattern/additionalProperties/anyOf':
    'must be a list of values (the event matches any of them) or a nested pattern object',
  '#/definitions/agentlessEmail/anyOf': 'needs a "text" or an "html" body',
};

function schemaProblems(
  errors: readonly ErrorObject[],
  at: (segments: (string | number)[], message: string, key?: string) => RuleProblem,
): RuleProblem[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const covered = (e: ErrorObject) =>
    e.keyword !== 'anyOf' &&
    anyOfs.some((a) => e.instancePath.startsWith(a.instancePath) && e.schemaPath.startsWith(`${a.schemaPath}/`));
  const problems: RuleProblem[] = [];
  const keys = new Set<string>();
  for (const e of errors) {
    if (covered(e)) continue;
    const segments = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let problem: RuleProblem;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(e.params['additionalProperty']);
        problem = at(segments, `unknown key "${key}"`, key);
        break;
      }
      case 'required':
        problem = at(segments, `missing required key "${String(e.params['missingProperty'])}"`);
        break;
      case 'anyOf':
        problem = at(segments, ANY_OF_MESSAGES[e.schemaPath] ?? e.message ?? 'is invalid');
        break;
      case 'minProperties':
      case 'maxProperties':
        problem = at(segments, 'must hold exactly one action (agentlessEmail)');
        break;
      case 'const':
        problem = at(segments, `must be ${JSON.stringify(e.params['allowedValue'])}`);
        break;
      default:
        problem = at(segments, e.message ?? 'is invalid');
    }
    const id = `${problem.path}|${problem.message}`;
    if (!keys.has(id)) problems.push(problem);
    keys.add(id);
  }
  return problems;
}

/** Offset of the node at `segments` (or of its key `key`) in the source, for line/column reporting. */
function offsetOf(doc: Document, segments: readonly (string | number)[], key?: string): number | undefined {
  const node = segments.length === 0 ? doc.contents : doc.getIn(segments, true);
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === key);
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
