/**
 * Committed rule test cases (`geb rules test --cases 'tests/**\/*.yaml'`), after Redpanda Connect's unit tests: each
 * case gives an input record and what must come of it (the rendered requests, no send, or error codes). A case passes
 * only when the outcome is exactly what it expects; a failure prints the first field that differs and a diff.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { RulesFileError, formatProblem, loadRulesFile } from '../rules/rules-file.js';
import type { Pattern } from '../rules/pattern.js';
import { closest } from '../rules/suggest.js';
import type { RuleSet } from '../rules/rule-set.js';
import { evaluate, patternsOf, type Evaluation } from './rules-evaluate.js';
import { recordOf, recordsOf, type TestRecord } from './rules-inputs.js';

export interface SendExpectation {
  readonly rule: string;
  /** The whole request, compared exactly. */
  readonly request?: unknown;
  /** Only the fields given are compared (a list must have the length given; its objects are compared alike). */
  readonly requestIncludes?: unknown;
  readonly orderingKey?: string;
  readonly idempotencyKey?: string;
}

export interface ErrorExpectation {
  readonly rule?: string | null;
  readonly code: string;
  /** Compared when given. */
  readonly message?: string;
}

export interface CaseOutcome {
  readonly file: string;
  readonly line: number | undefined;
  readonly name: string;
  /** Empty when the case passed. */
  readonly failures: readonly string[];
}

interface LoadedRules {
  readonly rules: RuleSet;
  readonly patterns: Map<string, Pattern | undefined>;
}

/** Files matching `pattern` (relative to `cwd`; `*`, `?` within a name, `**` for any folders), sorted. */
export function expandGlob(pattern: string, cwd: string): string[] {
  const absolute = resolve(cwd, pattern);
  const segments = absolute.split('/');
  const firstGlob = segments.findIndex((s) => /[*?[]/.test(s));
  if (firstGlob < 0) return isFile(absolute) ? [absolute] : [];
  const base = segments.slice(0, firstGlob).join('/') || '/';
  const out: string[] = [];
  walk(base, segments.slice(firstGlob), out);
  return [...new Set(out)].sort();
}

function walk(dir: string, rest: readonly string[], out: string[]): void {
  const [head, ...tail] = rest;
  if (head === undefined) return;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  if (head === '**') {
    walk(dir, tail, out); // zero folders
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name), rest, out);
    return;
  }
  const re = segmentRegex(head);
  for (const e of entries) {
    if (!re.test(e.name)) continue;
    const path = join(dir, e.name);
    if (tail.length === 0) {
      if (isFile(path)) out.push(path);
    } else if (e.isDirectory()) {
      walk(path, tail, out);
    }
  }
}

function segmentRegex(segment: string): RegExp {
  let re = '';
  for (const c of segment) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A leading dot is matched only when the pattern writes it, as shells do.
  return new RegExp(`^${segment.startsWith('.') ? '' : '(?!\\.)'}${re}$`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Runs every case of `files`. `defaultRules` is the rules file named on the command line, for case files that do not
 * name one. `print` receives the report, line by line.
 */
export async function runCaseFiles(
  files: readonly string[],
  defaultRules: string | undefined,
  print: (line: string) => void,
  cwd: string = process.cwd(),
): Promise<{ passed: number; failed: number }> {
  const loaded = new Map<string, Promise<LoadedRules | string>>();
  const load = (path: string) => {
    let entry = loaded.get(path);
    if (!entry) {
      entry = loadRules(path);
      loaded.set(path, entry);
    }
    return entry;
  };
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const shown = relative(cwd, file) || file;
    for (const outcome of await runCaseFile(file, shown, defaultRules, load)) {
      const where = outcome.line === undefined ? outcome.file : `${outcome.file}:${outcome.line}`;
      if (outcome.failures.length === 0) {
        passed += 1;
        print(`PASS ${where} ${outcome.name}`);
      } else {
        failed += 1;
        print(`FAIL ${where} ${outcome.name}`);
        for (const f of outcome.failures) print(f.replace(/^/gm, '  '));
      }
    }
  }
  print(`${passed + failed} case(s): ${passed} passed, ${failed} failed`);
  return { passed, failed };
}

async function loadRules(path: string): Promise<LoadedRules | string> {
  try {
    const rules = await loadRulesFile(path);
    return { rules, patterns: patternsOf(readFileSync(path, 'utf8')) };
  } catch (error) {
    if (!(error instanceof RulesFileError)) throw error;
    return error.problems.map((p) => formatProblem(path, p)).join('\n');
  }
}

interface RawCase {
  readonly name?: unknown;
  readonly topic?: unknown;
  readonly input?: unknown;
  readonly event?: unknown;
  readonly value?: unknown;
  readonly key?: unknown;
  readonly headers?: unknown;
  readonly expect?: unknown;
}

async function runCaseFile(
  file: string,
  shown: string,
  defaultRules: string | undefined,
  load: (path: string) => Promise<LoadedRules | string>,
): Promise<CaseOutcome[]> {
  const broken = (line: number | undefined, message: string): CaseOutcome[] => [
    { file: shown, line, name: '(case file)', failures: [message] },
  ];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return broken(
      undefined,
      `cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (path: (string | number)[]) => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  };
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = lineCounter.linePos(yamlError.pos[0]);
    return broken(pos.line, `${shown}:${pos.line}:${pos.col}: ${yamlError.message.split('\n', 1)[0]}`);
  }
  const data = doc.toJS() as { rules?: unknown; topic?: unknown; cases?: unknown } | null;
  if (!data || !isMap(doc.contents) || !isSeq(doc.get('cases', true))) {
    return broken(
      1,
      'a case file needs a "cases" list (and "rules": the rules file, relative to the case file)',
    );
  }
  const rulesPath =
    typeof data.rules === 'string'
      ? resolve(dirname(file), data.rules)
      : defaultRules && resolve(defaultRules);
  if (rulesPath === undefined) {
    return broken(
      1,
      'names no rules file: add "rules: path/to/rules.yaml" (relative to this file) or give FILE',
    );
  }
  const rules = await load(rulesPath);
  if (typeof rules === 'string') return broken(lineOf(['rules']), `the rules file has problems:\n${rules}`);
  const outcomes: CaseOutcome[] = [];
  for (const [i, raw] of (data.cases as RawCase[]).entries()) {
    const line = lineOf(['cases', i]);
    const name = typeof raw?.name === 'string' ? raw.name : `case ${i + 1}`;
    let failures: string[];
    try {
      failures = runCase(raw, file, typeof data.topic === 'string' ? data.topic : undefined, rules);
    } catch (error) {
      failures = [(error as Error).message];
    }
    outcomes.push({ file: shown, line, name, failures });
  }
  return outcomes;
}

function runCase(raw: RawCase, file: string, fileTopic: string | undefined, loaded: LoadedRules): string[] {
  if (typeof raw !== 'object' || raw === null)
    throw new Error('a case must be an object (name, event, expect)');
  unknownKeys(raw, CASE_KEYS, '');
  const record = recordFor(raw, file);
  const topic =
    (typeof raw.topic === 'string' ? raw.topic : undefined) ??
    record.topic ??
    fileTopic ??
    (loaded.rules.topics.length === 1 ? loaded.rules.topics[0] : undefined);
  if (topic === undefined) {
    throw new Error(
      `no topic: the rules read ${loaded.rules.topics.join(', ')}; add "topic:" to the case or the file`,
    );
  }
  if (!loaded.rules.topics.includes(topic)) {
    return [`no rule reads topic "${topic}" (the rules read: ${loaded.rules.topics.join(', ')})`];
  }
  if (typeof raw.expect !== 'object' || raw.expect === null) {
    throw new Error('needs "expect:" with "sends" (a list, [] for no send) and/or "errors"');
  }
  const expect = raw.expect as { sends?: unknown; errors?: unknown };
  unknownKeys(expect, EXPECT_KEYS, 'expect.');
  for (const [list, keys, needed] of [
    ['sends', SEND_KEYS, 'rule'],
    ['errors', ERROR_KEYS, 'code'],
  ] as const) {
    const value = expect[list];
    if (value === undefined) continue;
    if (!Array.isArray(value)) throw new Error(`expect.${list} must be a list ([] for none)`);
    for (const [i, item] of value.entries()) {
      if (
        typeof item !== 'object' ||
        item === null ||
        typeof (item as Record<string, unknown>)[needed] !== 'string'
      )
        throw new Error(`expect.${list}[${i}] needs "${needed}" (a string)`);
      unknownKeys(item as Record<string, unknown>, keys, `expect.${list}[${i}].`);
    }
  }
  const result = evaluate(
    loaded.rules,
    {
      topic,
      value: record.value,
      ...(record.key !== undefined && { key: record.key }),
      ...(record.headers !== undefined && { headers: record.headers }),
    },
    loaded.patterns,
  );
  return compare(
    (expect.sends ?? []) as SendExpectation[],
    (expect.errors ?? []) as ErrorExpectation[],
    result,
  );
}

const CASE_KEYS = ['name', 'topic', 'input', 'event', 'value', 'key', 'headers', 'expect'];
const EXPECT_KEYS = ['sends', 'errors'];
const SEND_KEYS = ['rule', 'request', 'requestIncludes', 'orderingKey', 'idempotencyKey'];
const ERROR_KEYS = ['rule', 'code', 'message'];

/** A misspelt key would otherwise leave a case checking less than its author thinks: refused, with the nearest. */
function unknownKeys(object: object, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(object)) {
    if (allowed.includes(key)) continue;
    const near = closest(key, allowed);
    throw new Error(
      `unknown key "${prefix}${key}"${near === undefined ? ` (known: ${allowed.join(', ')})` : `; did you mean "${near}"?`}`,
    );
  }
}

/** The case's record: `input: FILE[#INDEX]` (read as `--event` reads it), or `event`/`value` with `key`, `headers`. */
function recordFor(raw: RawCase, file: string): TestRecord {
  if (typeof raw.input === 'string') {
    const hash = raw.input.lastIndexOf('#');
    const [path, index] =
      hash > 0 ? [raw.input.slice(0, hash), Number(raw.input.slice(hash + 1))] : [raw.input, 0];
    const records = recordsOf(readFileSync(resolve(dirname(file), path)), path);
    const record = records[index];
    if (record === undefined) throw new Error(`input ${raw.input}: ${path} has ${records.length} record(s)`);
    return record;
  }
  if (raw.event === undefined && raw.value === undefined) {
    throw new Error('needs "event:" (the decoded event), "value:" (raw text) or "input: FILE#INDEX"');
  }
  return recordOf(
    {
      value: raw.event !== undefined ? raw.event : raw.value,
      ...(raw.key !== undefined && { key: raw.key }),
      ...(raw.headers !== undefined && { headers: raw.headers }),
    },
    'case',
    raw.event === undefined ? undefined : Buffer.from(JSON.stringify(raw.event)),
  );
}

function compare(sends: SendExpectation[], errors: ErrorExpectation[], result: Evaluation): string[] {
  const failures: string[] = [];
  const expectedRules = sends.map((s) => s.rule);
  const actualRules = result.matches.map((m) => m.rule);
  if (JSON.stringify(expectedRules) !== JSON.stringify(actualRules)) {
    failures.push(
      `sends: expected ${expectedRules.length === 0 ? 'no send' : `rules ${JSON.stringify(expectedRules)}`}, ` +
        `got ${actualRules.length === 0 ? 'no send' : `rules ${JSON.stringify(actualRules)}`}` +
        whyNothing(result),
    );
  } else {
    for (const [i, expected] of sends.entries()) {
      const actual = result.matches[i];
      if (!actual) continue;
      for (const key of ['orderingKey', 'idempotencyKey'] as const) {
        if (expected[key] !== undefined && expected[key] !== actual[key]) {
          failures.push(
            `sends[${i}] (rule ${expected.rule}): ${key}: expected ${JSON.stringify(expected[key])}, got ${JSON.stringify(actual[key])}`,
          );
        }
      }
      const [want, partial] =
        expected.requestIncludes !== undefined ? [expected.requestIncludes, true] : [expected.request, false];
      if (want === undefined) continue;
      const diff = firstDifference(want, actual.request, 'request', partial);
      if (diff) {
        failures.push(
          `sends[${i}] (rule ${expected.rule}): ${diff.path} differs\n` +
            `  expected: ${show(diff.expected)}\n  actual:   ${show(diff.actual)}\n` +
            lineDiff(
              JSON.stringify(want, null, 2),
              JSON.stringify(aligned(want, actual.request, partial), null, 2),
            ),
        );
      }
    }
  }
  const wanted = errors.map((e) => ({ rule: e.rule ?? null, code: e.code }));
  const got = result.errors.map((e) => ({ rule: e.rule, code: e.code }));
  if (JSON.stringify(wanted) !== JSON.stringify(got)) {
    failures.push(
      `errors: expected ${wanted.length === 0 ? 'none' : JSON.stringify(wanted)}, got ${
        got.length === 0 ? 'none' : ''
      }${result.errors.map((e) => `\n  ${e.rule ?? '(event)'}: ${e.code}: ${e.message}`).join('')}`,
    );
  } else {
    for (const [i, e] of errors.entries()) {
      const actual = result.errors[i];
      if (e.message !== undefined && actual && actual.message !== e.message) {
        failures.push(
          `errors[${i}] (${e.code}): message differs\n  expected: ${show(e.message)}\n  actual:   ${show(actual.message)}`,
        );
      }
    }
  }
  return failures;
}

/** For a case that expected sends and got none: what each rule said. */
function whyNothing(result: Evaluation): string {
  if (result.topicUnknown) return ' (no rule reads the topic)';
  const lines = result.explanations
    .filter((e) => !e.matched)
    .map((e) => `\n  ${e.rule}: no match: ${e.reason ?? '?'}`);
  return lines.join('');
}

export interface Difference {
  readonly path: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

/** The first place (in the expected value's key order) where `actual` differs; `partial` ignores keys not expected. */
export function firstDifference(
  expected: unknown,
  actual: unknown,
  path: string,
  partial: boolean,
): Difference | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return { path, expected, actual };
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      const d = firstDifference(expected[i], actual[i], `${path}[${i}]`, partial);
      if (d) return d;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual))
      return { path, expected, actual };
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      const d = firstDifference(e[key], a[key], `${path}.${key}`, partial);
      if (d) return d;
    }
    if (!partial) {
      for (const key of Object.keys(a)) {
        if (!(key in e)) return { path: `${path}.${key}`, expected: undefined, actual: a[key] };
      }
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : { path, expected, actual };
}

/**
 * `actual` laid out like `expected`, so that the diff shows only what differs: its keys in the expected order, and for
 * a partial comparison only the keys expected, in lists item by item.
 */
function aligned(expected: unknown, actual: unknown, partial: boolean): unknown {
  if (Array.isArray(expected) && Array.isArray(actual)) {
    return actual.map((item: unknown, i) => aligned(expected[i], item, partial));
  }
  if (!isPlainObject(expected) || !isPlainObject(actual)) return actual;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) {
    if (key in actual) out[key] = aligned(expected[key], actual[key], partial);
  }
  if (!partial) for (const key of Object.keys(actual)) if (!(key in out)) out[key] = actual[key];
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}

/** A line diff of two texts (`-` expected, `+` actual), with two lines of context around each change. */
export function lineDiff(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  // Longest common subsequence table; requests are at most a few hundred lines.
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      const row = lcs[i] as number[];
      row[j] =
        a[i] === b[j]
          ? ((lcs[i + 1] as number[])[j + 1] as number) + 1
          : Math.max((lcs[i + 1] as number[])[j] as number, row[j + 1] as number);
    }
  }
  const lines: { mark: ' ' | '-' | '+'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ mark: ' ', text: a[i] as string });
      i++;
      j++;
    } else if (
      i < a.length &&
      (j >= b.length || ((lcs[i + 1] as number[])[j] as number) >= ((lcs[i] as number[])[j + 1] as number))
    ) {
      lines.push({ mark: '-', text: a[i] as string });
      i++;
    } else {
      lines.push({ mark: '+', text: b[j] as string });
      j++;
    }
  }
  const keep = lines.map((l, k) => lines.slice(Math.max(0, k - 2), k + 3).some((n) => n.mark !== ' '));
  const out = ['--- expected', '+++ actual'];
  let skipped = false;
  for (const [k, l] of lines.entries()) {
    if (keep[k]) {
      out.push(`${l.mark} ${l.text}`);
      skipped = false;
    } else if (!skipped) {
      out.push('  ...');
      skipped = true;
    }
  }
  return out.join('\n');
}
