import { readFileSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject } from 'ajv';
import {
  LineCounter,
  isMap,
  isNode,
  isPair,
  isScalar,
  parseDocument,
  visit,
  type Document,
  type YAMLError,
} from 'yaml';
import { closest } from './suggest.js';
import { BridgeError } from '../errors.js';
import { ActionDefinitionError, TemplateFileRefusedError, compileAction, type RawAction } from './action.js';
import { PatternDefinitionError, compilePattern, exactFields, type Pattern } from './pattern.js';
import { RuleSet, type DeliveryPolicy, type Rule } from './rule-set.js';
import { parseAllowedHosts, resolveConnection, type Connection, type RawConnection } from './connection.js';
import { TemplateSyntaxError, compileTemplate } from './template.js';

const require = createRequire(import.meta.url);
const schema = require('../../schemas/rules.schema.json') as object;
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(
  schema,
);

/**
 * Limits on the shape of a rules file, so that a hostile or generated file is refused with a location instead of
 * exhausting the stack or the memory. Real files nest some 15 levels (rules → rule → match → fields → $or → operator).
 */
export const RULES_FILE_LIMITS = {
  /** Objects and lists inside one another, counting the top level: deeper is refused. */
  maxDepth: 64,
  /** How far YAML aliases (`*name`) may expand (the yaml package's count): an alias bomb goes over at once. */
  maxAliasCount: 100,
} as const;

export interface RuleProblem {
  /** Where in the document, e.g. `rules[0].action.agentlessEmail.subject`. */
  readonly path: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly message: string;
  /** The name of the rule the problem lies in, when it lies in one. */
  readonly rule?: string;
}

/** A rules file that cannot be used, with every problem found (not just the first) and where it is. */
export class RulesFileError extends BridgeError {
  constructor(
    readonly source: string,
    readonly problems: readonly RuleProblem[],
  ) {
    super(
      'RULES_INVALID',
      `${source} has ${problems.length} problem(s):\n${problems.map((p) => `  ${formatProblem(source, p)}`).join('\n')}`,
    );
  }
}

interface RawRulesFile {
  readonly version: 1;
  readonly connections?: Readonly<Record<string, RawConnection>>;
  readonly rules: readonly {
    name: string;
    topics: string[];
    enabled?: boolean;
    match?: Pattern;
    action: RawAction;
    delivery?: DeliveryPolicy;
    idempotencyKey?: string;
    orderingKey?: string;
    connection?: string;
    maxEventAge?: string;
  }[];
}

/**
 * What a rules file may reach beyond itself, as the operator grants it. Rules-file authors decide what is sent, but
 * not which files, environment variables or hosts the bridge exposes to them.
 */
export interface RulesFileAccess {
  /** A folder, besides the rules file's own, that template files may be read from (RULES_TEMPLATES_DIR). */
  readonly templatesDir?: string | undefined;
  /** Hosts (`host` or `host:port`) a connection may name besides Genesys' own, over http too (GENESYS_ALLOWED_HOSTS). */
  readonly allowedHosts?: readonly string[];
}

/** The access the operator's environment grants (RULES_TEMPLATES_DIR, GENESYS_ALLOWED_HOSTS). */
export function rulesFileAccessFrom(env: NodeJS.ProcessEnv): RulesFileAccess {
  const templatesDir = env['RULES_TEMPLATES_DIR'];
  return {
    ...(templatesDir !== undefined && templatesDir !== '' && { templatesDir }),
    allowedHosts: parseAllowedHosts(env['GENESYS_ALLOWED_HOSTS'] ?? ''),
  };
}

export async function loadRulesFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  access: RulesFileAccess = rulesFileAccessFrom(env),
): Promise<RuleSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RulesFileError(path, [
      { path: '', line: undefined, column: undefined, message: `cannot read the file (${reason})` },
    ]);
  }
  return parseRules(text, path, env, access);
}

/**
 * Parses and validates a rules document (YAML, or JSON which YAML includes) into a RuleSet. Template files
 * (`html: { file: … }`) are read relative to the directory of `source`, and only from there or `access.templatesDir`;
 * `${NAME}` in connections from `env`, GEB_RULES_* names only.
 */
export function parseRules(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  access: RulesFileAccess = rulesFileAccessFrom(env),
): RuleSet {
  const files: string[] = [];
  const readTemplateFile = templateFileReader(source, access.templatesDir, files);
  // Positions are only needed to report a problem. A JSON file (often generated, and the large ones usually are) is
  // read with JSON.parse and the YAML document with positions is built only if something must be located: on 10,000
  // rules the YAML parser takes 1.4 s where JSON.parse takes 25 ms, with a peak some 200 MB higher.
  let located: Located | undefined;
  const locate = (): Located => (located ??= parseWithPositions(text));
  const data = readData(text, source, locate);
  const fromJson = located === undefined;
  located = undefined; // not kept while the rules compile; built again only if a problem needs a position
  const at = (segments: readonly (string | number)[], message: string, key?: string): RuleProblem => {
    const { doc, lineCounter } = locate();
    const offset = offsetOf(doc, segments, key);
    const pos = offset === undefined ? undefined : lineCounter.linePos(offset);
    const index = segments[0] === 'rules' && typeof segments[1] === 'number' ? segments[1] : undefined;
    const name = index === undefined ? undefined : ruleNameAt(data, index);
    return {
      path: pathString(key ? [...segments, key] : segments),
      line: pos?.line,
      column: pos?.col,
      message,
      ...(name !== undefined && { rule: name }),
    };
  };

  // Checked before anything walks the data (the schema, the pattern compiler), none of which need then guard the
  // stack on their own.
  const deep = firstTooDeep(data, RULES_FILE_LIMITS.maxDepth);
  if (deep !== undefined) {
    const message = `nested more than ${RULES_FILE_LIMITS.maxDepth} levels deep: refused`;
    if (!fromJson) throw new RulesFileError(source, [at(deep, message)]);
    // The YAML parser that locates JSON problems would itself run out of stack on such a file: count brackets.
    const offset = tooDeepOffset(text, RULES_FILE_LIMITS.maxDepth);
    const pos = offset === undefined ? undefined : new LineCounterFor(text).linePos(offset);
    throw new RulesFileError(source, [
      { path: pathString(deep), line: pos?.line, column: pos?.col, message },
    ]);
  }
  // Schema problems and compile problems (templates, names) are reported together: every rule that passed the
  // schema is compiled even when another did not, so one run shows the author every mistake.
  const problems: RuleProblem[] = [];
  const brokenRules = new Set<number>();
  let brokenConnections = false;
  if (!validate(data)) {
    const errors = validate.errors ?? [];
    problems.push(...schemaProblems(errors, at));
    for (const e of errors) {
      const index = /^\/rules\/(\d+)/.exec(e.instancePath)?.[1];
      if (index !== undefined) brokenRules.add(Number(index));
      else if (e.instancePath === '' || e.instancePath === '/rules') brokenRules.add(-1);
      else if (e.instancePath.startsWith('/connections')) brokenConnections = true;
    }
  }
  const connections = new Map<string, Connection>();
  const rawConnections =
    isRulesArray(data) && !brokenRules.has(-1) && !brokenConnections ? (data.connections ?? {}) : {};
  for (const [name, raw] of Object.entries(rawConnections)) {
    const resolved = resolveConnection(name, raw, env, access.allowedHosts ?? []);
    if (Array.isArray(resolved)) {
      for (const p of resolved) {
        problems.push(at(['connections', name], p.message, p.field === '' ? undefined : p.field));
      }
    } else {
      connections.set(name, resolved);
    }
  }
  const rawRules = isRulesArray(data) ? data.rules : [];
  const rules = compileRules(rawRules, {
    at,
    problems,
    brokenRules,
    rawConnections,
    connections,
    readTemplateFile,
  });
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (problems.length > 0) throw new RulesFileError(source, problems);
  return new RuleSet(rules, files, connections);
}

/**
 * Reads a template file named in the rules file (relative to its folder), recording it in `files` so that a change to
 * it reloads the rules.
 */
function templateFileReader(
  source: string,
  templatesDir: string | undefined,
  files: string[],
): (file: string) => string {
  const folders = templateFolders(source, templatesDir);
  return (file: string) => {
    const path = resolve(dirname(source), file);
    // The real path, with every symbolic link followed, must lie inside a granted folder: `../`, an absolute path or
    // a link pointing out (to /proc/self/environ, a secret file) would otherwise put any file the bridge can read into
    // a message.
    const real = realpathSync(path);
    if (!folders.some((folder) => real.startsWith(folder.endsWith(sep) ? folder : folder + sep))) {
      throw new TemplateFileRefusedError(
        `is outside the folders template files may be read from (the rules file's folder${
          templatesDir === undefined ? '' : ' and RULES_TEMPLATES_DIR'
        }); refused`,
      );
    }
    if (!statSync(real).isFile()) throw new TemplateFileRefusedError('is not a regular file; refused');
    if (!files.includes(path)) files.push(path);
    return readFileSync(real, 'utf8');
  };
}

/** The rules file's data: JSON.parse when it is JSON, else the YAML document (whose first error is located). */
function readData(text: string, source: string, locate: () => Located): unknown {
  const data = parseJson(text);
  if (data !== undefined) return data;
  const { doc, lineCounter } = locate();
  const first = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])[0];
  if (first) {
    // Only the first: the yaml package reports each slip again as it recovers (an indentation slip gave up to four
    // errors, at column 1 of the lines after it), so the later ones mislead more than they help.
    throw new RulesFileError(source, [yamlProblem(text, first, lineCounter)]);
  }
  try {
    return doc.toJS({ maxAliasCount: RULES_FILE_LIMITS.maxAliasCount }) as unknown;
  } catch (error) {
    if (!(error instanceof ReferenceError) || !/alias/i.test(error.message)) throw error;
    const pos = lineCounter.linePos(firstAliasOffset(doc) ?? 0);
    throw new RulesFileError(source, [
      {
        path: '',
        line: pos.line,
        column: pos.col,
        message: `its aliases (*name) expand too far (more than ${RULES_FILE_LIMITS.maxAliasCount} in the yaml package's count): refused as an alias bomb`,
      },
    ]);
  }
}

/** What compiling the rules needs from the file around them; problems are pushed, every rule is tried. */
interface CompileContext {
  readonly at: (segments: readonly (string | number)[], message: string, key?: string) => RuleProblem;
  readonly problems: RuleProblem[];
  readonly brokenRules: ReadonlySet<number>;
  readonly rawConnections: Readonly<Record<string, RawConnection>>;
  readonly connections: ReadonlyMap<string, Connection>;
  readonly readTemplateFile: (file: string) => string;
}

/** Compiles each rule that passed the schema (the pattern, the action and the keys apart). */
function compileRules(rawRules: RawRulesFile['rules'], context: CompileContext): Rule[] {
  const { at, problems, brokenRules, rawConnections, connections, readTemplateFile } = context;
  const rules: Rule[] = [];
  const seen = new Set<string>();
  rawRules.forEach((rule, index) => {
    if (brokenRules.has(index) || brokenRules.has(-1)) return;
    if (rule.connection !== undefined && !(rule.connection in rawConnections))
      problems.push(
        at(['rules', index, 'connection'], `no connection named "${rule.connection}" under connections`),
      );
    if (seen.has(rule.name))
      problems.push(at(['rules', index, 'name'], `rule name "${rule.name}" is used twice`));
    seen.add(rule.name);
    // The pattern and the action are compiled apart, so that a mistake in one does not hide one in the other.
    const matches = attempt(index, () => compilePattern(rule.match));
    const action = attempt(index, () => compileAction(rule.action, 'action', readTemplateFile));
    // null: the rule has no such key; undefined: it has one that does not compile (a problem is recorded).
    const keyTemplate = (field: 'idempotencyKey' | 'orderingKey') => {
      const source = rule[field];
      return source === undefined ? null : attempt(index, () => compileTemplate(source, field, 'header'));
    };
    const idempotencyKey = keyTemplate('idempotencyKey');
    const orderingKey = keyTemplate('orderingKey');
    // A disabled rule is still checked, so that enabling it later cannot surprise anyone.
    if (
      matches &&
      action &&
      idempotencyKey !== undefined &&
      orderingKey !== undefined &&
      rule.enabled !== false
    ) {
      rules.push({
        name: rule.name,
        topics: Object.freeze([...rule.topics]),
        matches,
        action,
        exactFields: exactFields(rule.match),
        ...(rule.match && { pattern: rule.match }),
        // Every action today is a message a person reads: a duplicate is worse than a gap, so at-most-once.
        delivery: rule.delivery ?? 'at-most-once',
        ...(idempotencyKey && { idempotencyKey }),
        ...(orderingKey && { orderingKey }),
        ...(rule.maxEventAge !== undefined && { maxEventAgeMs: durationMs(rule.maxEventAge) }),
        ...(rule.connection !== undefined && connections.has(rule.connection)
          ? { connection: connections.get(rule.connection) }
          : {}),
      });
    }
  });

  function attempt<T>(index: number, compile: () => T): T | undefined {
    try {
      return compile();
    } catch (error) {
      if (error instanceof TemplateSyntaxError) {
        problems.push(
          at(['rules', index, ...segmentsOf(error.field)], error.message.replace(/^[^:]+: /, '')),
        );
      } else if (error instanceof ActionDefinitionError) {
        problems.push(at(['rules', index, ...segmentsOf(error.field)], error.message));
      } else if (error instanceof PatternDefinitionError) {
        problems.push(at(['rules', index, 'match', ...error.segments], error.message));
      } else {
        throw error;
      }
      return undefined;
    }
  }
  return rules;
}

/** The real paths of the folders template files may come from; one that does not exist grants nothing. */
function templateFolders(source: string, templatesDir: string | undefined): string[] {
  const folders: string[] = [];
  for (const folder of [dirname(resolve(source)), templatesDir]) {
    if (folder === undefined) continue;
    try {
      folders.push(realpathSync(resolve(folder)));
    } catch {
      // Missing or unreadable: nothing can be read from it anyway.
    }
  }
  return folders;
}

/** The yaml package's message, with a stack overflow (a document nested thousands deep) said plainly. */
function yamlMessage(message: string): string {
  if (/Maximum call stack size exceeded/.test(message)) {
    return `nested too deeply to read (the limit is ${RULES_FILE_LIMITS.maxDepth} levels)`;
  }
  return message.split('\n', 1)[0] ?? message;
}

function firstAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  try {
    visit(doc, {
      Alias(_key, node) {
        offset = node.range?.[0];
        return visit.BREAK;
      },
    });
  } catch {
    // Reported at the top of the file instead.
  }
  return offset;
}

/**
 * The path to the first object or list (in document order) nested deeper than `max`, or undefined. Iterative, so
 * that a file nested 10,000 deep is measured, not followed down the stack.
 */
function firstTooDeep(data: unknown, max: number): (string | number)[] | undefined {
  // Each entry links to its parent's, so that the path is built only for the node that is reported.
  interface Entry {
    readonly value: object;
    readonly depth: number;
    readonly key: string | number;
    readonly parent: Entry | undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const stack: Entry[] = [{ value: data, depth: 0, key: '', parent: undefined }];
  while (stack.length > 0) {
    const entry = stack.pop() as Entry;
    if (entry.depth >= max) {
      const path: (string | number)[] = [];
      for (let e: Entry | undefined = entry; e?.parent !== undefined; e = e.parent) path.unshift(e.key);
      return path;
    }
    const keys: (string | number)[] = Array.isArray(entry.value)
      ? entry.value.map((_v, i) => i)
      : Object.keys(entry.value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string | number;
      const child = (entry.value as Record<string | number, unknown>)[key];
      if (typeof child === 'object' && child !== null) {
        stack.push({ value: child, depth: entry.depth + 1, key, parent: entry });
      }
    }
  }
  return undefined;
}

/** Offset of the first bracket of valid JSON text that opens level `max + 1`. */
function tooDeepOffset(text: string, max: number): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '{' || c === '[') {
      depth += 1;
      if (depth > max) return i;
    } else if (c === '}' || c === ']') {
      depth -= 1;
    }
  }
  return undefined;
}

/** A LineCounter over `text` without parsing it as YAML. */
class LineCounterFor extends LineCounter {
  constructor(text: string) {
    super();
    this.addNewLine(0);
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.addNewLine(i + 1);
  }
}

function segmentsOf(field: string): (string | number)[] {
  return field.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
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
    schema: definitions['topPattern'],
    keyword: 'type',
    message: 'must be a pattern object (field: [values or operators])',
  },
  {
    schema: definitions['action'],
    keyword: 'minProperties',
    message: 'must hold exactly one action (agentlessEmail, agentlessMessage or campaignContact)',
  },
  {
    schema: definitions['action'],
    keyword: 'maxProperties',
    message: 'must hold exactly one action (agentlessEmail, agentlessMessage or campaignContact)',
  },
  {
    schema: definitions['operator'],
    keyword: 'minProperties',
    message:
      'must hold exactly one operator (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)',
  },
  {
    schema: definitions['operator'],
    keyword: 'maxProperties',
    message:
      'must hold exactly one operator (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)',
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
    } else if (e.keyword === 'false schema') {
      const key = String(segments.pop());
      problem = at(
        segments,
        `unknown key "${key}" (of the keys starting with "$", patterns know $or and, at the top, $kafka)`,
        key,
      );
    } else if (e.keyword === 'additionalProperties') {
      const key = String(e.params['additionalProperty']);
      problem = at(segments, `unknown key "${key}"${unknownKeyHint(key, e.parentSchema)}`, key);
    } else if (e.keyword === 'required') {
      const missing = String(e.params['missingProperty']);
      const near = misspelled(e.data, missing);
      problem = at(
        segments,
        `missing required key "${missing}"${near === undefined ? '' : ` ("${near}" is there: a misspelling?)`}`,
      );
    } else if (e.keyword === 'const') {
      problem = at(segments, `must be ${JSON.stringify(e.params['allowedValue'])}`);
    } else if (e.keyword === 'enum') {
      const allowed = (e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v));
      const near =
        typeof e.data === 'string' ? closest(e.data, allowedStrings(e.params['allowedValues'])) : undefined;
      problem = at(
        segments,
        `must be one of ${allowed.join(', ')}${near === undefined ? '' : `; did you mean "${near}"?`} (found ${JSON.stringify(e.data)})`,
      );
    } else {
      problem = at(segments, e.message ?? 'is invalid');
    }
    const id = `${problem.path}|${problem.message}`;
    if (!seen.has(id)) problems.push(problem);
    seen.add(id);
  }
  return problems;
}

interface Located {
  readonly doc: Document;
  readonly lineCounter: LineCounter;
}

function parseWithPositions(text: string): Located {
  const lineCounter = new LineCounter();
  return { doc: parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false }), lineCounter };
}

/**
 * The value of `text` if it is JSON with no key given twice in one object, otherwise undefined (and the YAML parser,
 * which also reads JSON, reports what is wrong and where). JSON.parse alone would keep the last of two equal keys
 * without a word, where the YAML path reports the duplicate.
 */
function parseJson(text: string): unknown {
  const first = /\S/.exec(text)?.[0];
  if (first !== '{' && first !== '[') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // The text is valid JSON, so every string token and bracket can be found by this one expression; a string
  // followed by a colon is a key of the innermost open object.
  const stack: (Set<string> | undefined)[] = [];
  const token = /"(?:[^"\\]|\\.)*"\s*:|"(?:[^"\\]|\\.)*"|[{}[\]]/g;
  for (let m = token.exec(text); m !== null; m = token.exec(text)) {
    const t = m[0];
    if (t === '{') stack.push(new Set());
    else if (t === '[') stack.push(undefined);
    else if (t === '}' || t === ']') stack.pop();
    else if (t.endsWith(':')) {
      const keys = stack[stack.length - 1];
      const key = JSON.parse(t.slice(0, t.lastIndexOf('"') + 1)) as string;
      if (keys === undefined || keys.has(key)) return undefined;
      keys.add(key);
    }
  }
  return value;
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

/** `file:line:column: path: message`, the form editors and CI annotations understand. */
export function formatProblem(source: string, p: RuleProblem): string {
  const where = p.line !== undefined ? `${source}:${p.line}:${p.column ?? 1}` : source;
  return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}${p.rule === undefined ? '' : ` (rule "${p.rule}")`}`;
}

/**
 * The lines around `line` with a caret under `column`, as compilers print them, for a person at a terminal (logs keep
 * the one-line form).
 */
export function codeFrame(text: string, line: number, column: number): string {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop(); // the newline that ends the last line
  const from = Math.max(1, line - 2);
  const to = Math.min(lines.length, line + 1);
  const width = String(to).length;
  const out: string[] = [];
  for (let n = from; n <= to; n++) {
    const content = (lines[n - 1] ?? '').replace(/\r$/, '').replace(/\t/g, '→');
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${content}`);
    if (n === line) out.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  }
  return out.join('\n');
}

/** Operator names people reach for from other languages, and the EventBridge operator that does the job. */
const MISTAKEN_OPERATORS: Readonly<Record<string, string>> = {
  startswith: 'prefix',
  'starts-with': 'prefix',
  starts_with: 'prefix',
  beginswith: 'prefix',
  'begins-with': 'prefix',
  begins_with: 'prefix',
  endswith: 'suffix',
  'ends-with': 'suffix',
  ends_with: 'suffix',
  equalsignorecase: 'equals-ignore-case',
  equals_ignore_case: 'equals-ignore-case',
  ignorecase: 'equals-ignore-case',
  'ignore-case': 'equals-ignore-case',
  iequals: 'equals-ignore-case',
  anythingbut: 'anything-but',
  anything_but: 'anything-but',
  not: 'anything-but',
  ne: 'anything-but',
  neq: 'anything-but',
  notequals: 'anything-but',
  'not-equals': 'anything-but',
  notin: 'anything-but',
  'not-in': 'anything-but',
  exist: 'exists',
  present: 'exists',
  missing: 'exists',
  isnull: 'exists',
  range: 'numeric',
  between: 'numeric',
  gt: 'numeric',
  gte: 'numeric',
  lt: 'numeric',
  lte: 'numeric',
  eq: 'numeric',
  like: 'wildcard',
  glob: 'wildcard',
  match: 'wildcard',
  matches: 'wildcard',
  regex: 'wildcard',
  contains: 'wildcard',
  ip: 'cidr',
  subnet: 'cidr',
};

const OPERATOR_SCHEMAS = new Set([definitions['operator'], definitions['anythingButOperator']]);

/** `; did you mean "subject"?` for a key near one the schema allows there, or the operator a mistaken name means. */
function unknownKeyHint(key: string, parentSchema: unknown): string {
  const allowed = Object.keys((parentSchema as { properties?: object } | undefined)?.properties ?? {});
  if (OPERATOR_SCHEMAS.has(parentSchema as object)) {
    const mapped = MISTAKEN_OPERATORS[key.toLowerCase()];
    if (mapped !== undefined && allowed.includes(mapped)) {
      return `; did you mean "${mapped}"? (the operators are ${allowed.join(', ')})`;
    }
    const near = closest(key, allowed);
    return `${near === undefined ? '' : `; did you mean "${near}"?`} (the operators are ${allowed.join(', ')})`;
  }
  const near = closest(key, allowed);
  if (near !== undefined) return `; did you mean "${near}"?`;
  return allowed.length > 0 && allowed.length <= 12 ? ` (allowed here: ${allowed.join(', ')})` : '';
}

/** A key of `data` that looks like a misspelling of the required key `missing`. */
function misspelled(data: unknown, missing: string): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  return closest(missing, Object.keys(data));
}

function allowedStrings(values: unknown): string[] {
  return Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
}

function ruleNameAt(data: unknown, index: number): string | undefined {
  const rules = (data as { rules?: unknown } | null | undefined)?.rules;
  const rule: unknown = Array.isArray(rules) ? rules[index] : undefined;
  const name = (rule as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * The first YAML error as a problem at the place to fix. An indentation slip is found by following the indentation
 * line by line (the yaml package reports where its parse broke, often a line later or at column 1); the problem names
 * the rule whose lines it is in.
 */
function yamlProblem(text: string, error: YAMLError, lineCounter: LineCounter): RuleProblem {
  // An unclosed quote is reported where the text runs out; the place to fix is the quote that opened it.
  const quote = /^Missing closing (["'])quote/.exec(error.message)?.[1];
  const opened = quote === undefined ? -1 : text.lastIndexOf(quote, Math.max(0, error.pos[0] - 1));
  const pos = lineCounter.linePos(opened >= 0 ? opened : error.pos[0]);
  const lines = text.split('\n');
  // The line after the error too: a key dedented by mistake shows up as the next line being "too deep".
  // A "slip" well before the parser's error is more likely a line the heuristic misreads (a plain scalar continued on
  // the next line) than the cause: then the parser's own error is reported.
  const indentation =
    INDENTATION_ERRORS.has(error.code) || (error.code === 'MISSING_CHAR' && /indicator/.test(error.message));
  const found = indentation ? indentationSlip(lines, pos.line + 1) : undefined;
  const slip = found !== undefined && found.line >= pos.line - 1 ? found : undefined;
  const line = slip?.line ?? pos.line;
  let column = slip?.column ?? pos.col;
  if (slip === undefined) {
    // At column 1 of an indented line, point at its first character instead.
    const content = lines[line - 1] ?? '';
    const indent = /^[ \t]*/.exec(content)?.[0].length ?? 0;
    if (column <= indent && indent < content.length) column = indent + 1;
  }
  const rule = ruleNameAbove(lines, line);
  return {
    path: '',
    line,
    column,
    message: slip?.message ?? `${yamlMessage(error.message)}`,
    ...(rule !== undefined && { rule }),
  };
}

/** The yaml package's error codes that an indentation slip gives. */
const INDENTATION_ERRORS = new Set([
  'BAD_INDENT',
  'TAB_AS_INDENT',
  'BLOCK_AS_IMPLICIT_KEY',
  'MULTILINE_IMPLICIT_KEY',
]);

/**
 * The first line, up to `limit`, whose indentation the lines before it cannot explain: a tab, a line deeper than one
 * that opens no block, or a line back at a level no enclosing block uses.
 */
function indentationSlip(
  lines: readonly string[],
  limit: number,
): { line: number; column: number; message: string } | undefined {
  const levels = [0];
  let opens = false; // the previous line ends with ":" (or "- "): the next may go deeper
  let scalarIndent: number | undefined; // inside a block scalar (| or >) started at this indentation
  let flowDepth = 0;
  let previous: number | undefined;
  for (let n = 1; n <= Math.min(limit, lines.length); n++) {
    const raw = (lines[n - 1] ?? '').replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(raw)) continue;
    const indent = /^ */.exec(raw)?.[0].length ?? 0;
    if (scalarIndent !== undefined) {
      if (indent > scalarIndent) continue;
      scalarIndent = undefined;
    }
    if (flowDepth > 0) {
      flowDepth += depthChange(raw);
      continue;
    }
    if (raw[indent] === '\t') {
      return {
        line: n,
        column: indent + 1,
        message: 'a tab in the indentation: YAML indents with spaces only',
      };
    }
    const top = levels[levels.length - 1] as number;
    if (indent > top) {
      // A deeper line that is not a key or an item continues the plain text of the line before: YAML allows that.
      if (!opens && !/^(- |-$|[^\s#'"][^:#]*:(\s|$))/.test(raw.slice(indent))) continue;
      if (!opens) {
        return {
          line: n,
          column: indent + 1,
          message: `indented ${indent} spaces, deeper than line ${previous} (${top} spaces), which opens no block: align it with the line before, or end that line with ":"`,
        };
      }
      levels.push(indent);
    } else if (indent < top) {
      while ((levels[levels.length - 1] as number) > indent) levels.pop();
      if (levels[levels.length - 1] !== indent) {
        return {
          line: n,
          column: indent + 1,
          message: `indented ${indent} spaces, which matches no enclosing level (${levels.join(', ')}, or ${top}): keys of one mapping must start in the same column`,
        };
      }
    }
    const body = raw.slice(indent).replace(/\s+#.*$/, '');
    // A list item's content starts after "- ": its further keys align there.
    const item = /^-( +)/.exec(body);
    if (item) levels.push(indent + 1 + (item[1]?.length ?? 1));
    opens = /:$/.test(body) || /^-$/.test(body);
    if (/:\s*[|>][-+0-9]*$/.test(body)) scalarIndent = indent;
    flowDepth = Math.max(0, depthChange(body));
    previous = n;
  }
  return undefined;
}

/** Brackets opened minus closed on a line, outside quotes (roughly: enough to skip a flow collection's lines). */
function depthChange(line: string): number {
  let depth = 0;
  let quote: string | undefined;
  for (const c of line) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{' || c === '[') depth += 1;
    else if (c === '}' || c === ']') depth -= 1;
    else if (c === '#') break;
  }
  return depth;
}

/** The name of the rule whose lines hold `line`: the nearest `- name: …` above it. */
function ruleNameAbove(lines: readonly string[], line: number): string | undefined {
  for (let n = line; n >= 1; n--) {
    const m = /^\s*-\s+name:\s*['"]?([^'"#]+?)['"]?\s*(#.*)?$/.exec(lines[n - 1] ?? '');
    if (m) return m[1];
    if (/^rules:/.test(lines[n - 1] ?? '')) return undefined;
  }
  return undefined;
}

/** `90s`, `15m`, `6h`, `2d` (the schema has checked the form). */
function durationMs(text: string): number {
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[text.slice(-1)] ?? 1_000;
  return Number(text.slice(0, -1)) * unit;
}
