/**
 * AWS EventBridge event patterns over the decoded event (https://docs.aws.amazon.com/eventbridge/latest/userguide/
 * eb-event-patterns.html). A pattern is an object whose leaves are lists of conditions: the field matches when any
 * condition does, and every field of the object must match. Conditions are exact values (type-strict: 5 never equals
 * "5"; null and "" are values) or one-key operator objects: prefix, suffix, equals-ignore-case, wildcard,
 * anything-but, numeric, exists and cidr. `$or` takes a list of patterns, any of which must match, at any level.
 *
 * Corner cases, as EventBridge defines them:
 * - a field holding an array matches when any element matches; arrays within arrays are flattened into one list;
 * - comparisons apply to leaf values (strings, numbers, booleans, null): an object where a leaf is expected is no
 *   leaf, so a field with no leaf value (missing, an object, an empty array, an array of objects only) is missing;
 * - only `exists: false` matches a missing field, and it fails when any array element is a leaf (a `null` too);
 *   `anything-but` needs the field to be present;
 * - a nested pattern over an array of objects must match within one element, also across `$or`s: patterns are
 *   multiplied out into `$or`-free alternatives first, as event-ruler does.
 *
 * The reserved top-level key `$kafka` matches the Kafka record instead of the event: `key` (the key as UTF-8) and
 * `headers` (name → value as UTF-8; a repeated header is an array).
 */
import { BlockList, isIP } from 'node:net';

export type PatternValue = string | number | boolean | null;
export type Condition = PatternValue | OperatorCondition;
export interface OperatorCondition {
  readonly [operator: string]: unknown;
}
export interface Pattern {
  readonly [field: string]: readonly Condition[] | Pattern | readonly Pattern[];
}

/** What `$kafka` matches: the record's key and headers, decoded as UTF-8. */
export interface KafkaMeta {
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
}

export type Matcher = (event: unknown, kafka?: KafkaMeta) => boolean;

/** A mistake the JSON Schema cannot express (a numeric range the wrong way round, `**` in a wildcard…). */
export class PatternDefinitionError extends Error {
  constructor(
    readonly segments: readonly (string | number)[],
    message: string,
  ) {
    super(message);
    this.name = 'PatternDefinitionError';
  }
}

export const KAFKA_KEY = '$kafka';

/**
 * How deep a pattern may nest (fields, `$or` lists and their alternatives, each a level). Compiling and indexing
 * recurse, so a pattern nested thousands deep would overflow the stack; a rules file is refused shallower still
 * (RULES_FILE_LIMITS.maxDepth), so this guards other callers.
 */
export const MAX_PATTERN_DEPTH = 64;
const OR = '$or';

type ObjectMatcher = (value: unknown) => boolean;
type LeafTest = (value: unknown) => boolean;

export function compilePattern(pattern: Pattern | undefined): Matcher {
  if (!pattern || Object.keys(pattern).length === 0) return () => true;
  const flat = exactValuesOnly(pattern);
  if (flat) return flat;
  const expanded = expand(pattern, []);
  // The top-level leaf tests every alternative holds (the fields beside the `$or`s, such as `type`) are checked once,
  // first: a top-level leaf belongs to no array element, so checking it apart changes no answer, and an event of
  // another type is turned away without trying each alternative.
  const shared: Alternative = new Map();
  for (const [field, { leaves }] of expanded[0] ?? []) {
    const common = leaves.filter((leaf) => expanded.every((alt) => alt.get(field)?.leaves.includes(leaf)));
    if (common.length > 0) shared.set(field, { leaves: common, nested: undefined });
  }
  const sharedCheck = compileAlternative(shared, true);
  const alternatives = expanded.map((alt) => compileAlternative(without(alt, shared), true));
  return matcherOf(sharedCheck, alternatives);
}

/**
 * The usual rule, `{type: [OrderShipped]}` (top-level fields each listing exact values), as one closure over two
 * arrays: the general compiler's tree of closures costs some 1.3 KB a rule, which with 10,000 rules is heap that every
 * garbage collection walks. It answers as the general path does (compileLeaf's exact-values case, field by field).
 */
function exactValuesOnly(pattern: Pattern): Matcher | undefined {
  const fields: string[] = [];
  const allowed: (readonly unknown[])[] = [];
  for (const [field, spec] of Object.entries(pattern)) {
    if (field === OR || field === KAFKA_KEY || !Array.isArray(spec)) return undefined;
    const conditions = spec as readonly Condition[];
    if (conditions.length === 0 || conditions.some(isObject)) return undefined;
    fields.push(field);
    allowed.push([...conditions]);
  }
  return (event) => {
    for (let i = 0; i < fields.length; i++) {
      if (!holdsOneOf(allowed[i] as readonly unknown[], fieldOf(event, fields[i] as string))) return false;
    }
    return true;
  };
}

/**
 * Made apart from compilePattern so that the matcher's closure holds only the two checks: a closure made there would
 * share its scope with the callbacks above and keep the expanded pattern alive for as long as the rule lives (about
 * 2 KB a rule, a fifth of the heap with 10,000 rules).
 */
function matcherOf(sharedCheck: ObjectMatcher, alternatives: readonly ObjectMatcher[]): Matcher {
  if (alternatives.length === 1) {
    const [only] = alternatives as [ObjectMatcher];
    return (event, kafka) => {
      const input: TopInput = { [TOP_EVENT]: event, [TOP_KAFKA]: kafka };
      return sharedCheck(input) && only(input);
    };
  }
  return (event, kafka) => {
    const input: TopInput = { [TOP_EVENT]: event, [TOP_KAFKA]: kafka };
    return sharedCheck(input) && alternatives.some((alt) => alt(input));
  };
}

/** `alternative` without the top-level leaf tests of `shared`. */
function without(alternative: Alternative, shared: Alternative): Alternative {
  const out: Alternative = new Map();
  for (const [field, { leaves, nested }] of alternative) {
    const left = leaves.filter((leaf) => !shared.get(field)?.leaves.includes(leaf));
    if (left.length > 0 || nested) out.set(field, { leaves: left, nested });
  }
  return out;
}

// The top level reads fields from the event and `$kafka` from the record; both travel in one private wrapper.
const TOP_EVENT = Symbol('event');
const TOP_KAFKA = Symbol('kafka');
interface TopInput {
  [TOP_EVENT]: unknown;
  [TOP_KAFKA]: KafkaMeta | undefined;
}

/**
 * A pattern with its `$or`s multiplied out (as event-ruler does): every field's compiled leaf tests, all of which must
 * hold, and the pattern nested under it. Expanding first is what keeps fields under an array of objects within one
 * element wherever an `$or` is written: `{items: {sku: [X]}, $or: [{items: {qty: [2]}}, …]}` means sku and qty of the
 * same item, which two independent checks of `items` could not see.
 */
type Alternative = Map<string, { readonly leaves: LeafTest[]; nested: Alternative | undefined }>;

/** Past this many alternatives a pattern is refused: each is matched on its own, so the product must stay small. */
const MAX_ALTERNATIVES = 256;

function expand(pattern: Pattern, at: (string | number)[]): Alternative[] {
  if (at.length > MAX_PATTERN_DEPTH) {
    throw new PatternDefinitionError(
      at.slice(0, MAX_PATTERN_DEPTH),
      `is nested more than ${MAX_PATTERN_DEPTH} levels deep`,
    );
  }
  let result: Alternative[] = [new Map() as Alternative];
  for (const [field, spec] of Object.entries(pattern)) {
    const path = [...at, field];
    let options: Alternative[];
    if (field === OR) {
      options = (spec as readonly Pattern[]).flatMap((alt, i) => expand(alt, [...path, i]));
    } else if (Array.isArray(spec)) {
      options = [
        new Map([[field, { leaves: [compileLeaf(spec as readonly Condition[], path)], nested: undefined }]]),
      ];
    } else {
      options = expand(spec as Pattern, path).map((nested) => new Map([[field, { leaves: [], nested }]]));
    }
    result = result.flatMap((left) => options.map((right) => merge(left, right)));
    if (result.length > MAX_ALTERNATIVES) {
      throw new PatternDefinitionError(
        at,
        `its "$or"s multiply out to more than ${MAX_ALTERNATIVES} alternatives; split it into several rules`,
      );
    }
  }
  return result;
}

function merge(left: Alternative, right: Alternative): Alternative {
  const out: Alternative = new Map();
  for (const [field, entry] of left) out.set(field, { leaves: [...entry.leaves], nested: entry.nested });
  for (const [field, entry] of right) {
    const mine = out.get(field);
    if (!mine) {
      out.set(field, { leaves: [...entry.leaves], nested: entry.nested });
      continue;
    }
    mine.leaves.push(...entry.leaves);
    if (entry.nested) mine.nested = mine.nested ? merge(mine.nested, entry.nested) : entry.nested;
  }
  return out;
}

function compileAlternative(alternative: Alternative, top: boolean): ObjectMatcher {
  const checks: ObjectMatcher[] = [];
  for (const [field, { leaves, nested }] of alternative) {
    let read: (value: unknown) => unknown;
    if (top && field === KAFKA_KEY) {
      read = (value) => kafkaView((value as TopInput)[TOP_KAFKA]);
    } else if (top) {
      read = (value) => fieldOf((value as TopInput)[TOP_EVENT], field);
    } else {
      read = (value) => fieldOf(value, field);
    }
    for (const leaf of leaves) checks.push((value) => leaf(read(value)));
    if (nested) {
      const inner = compileAlternative(nested, false);
      checks.push((value) => nestedMatches(read(value), inner));
    }
  }
  return (value) => checks.every((check) => check(value));
}

function kafkaView(kafka: KafkaMeta | undefined): Record<string, unknown> {
  const view: Record<string, unknown> = { headers: kafka?.headers ?? {} };
  if (kafka?.key !== undefined) view['key'] = kafka.key;
  return view;
}

/**
 * An object descends; an array (arrays within it flattened) matches when one object element does; anything else is
 * seen as empty.
 */
function nestedMatches(value: unknown, nested: ObjectMatcher): boolean {
  if (Array.isArray(value)) {
    const objects = flatten(value).filter(isObject);
    return objects.length > 0 ? objects.some(nested) : nested({});
  }
  return nested(isObject(value) ? value : {});
}

/** Arrays within arrays are one list of values, as event-ruler flattens them: `[[1, 2], [3]]` holds 1, 2 and 3. */
function flatten(values: readonly unknown[]): readonly unknown[] {
  return values.some(Array.isArray) ? values.flat(Infinity) : values;
}

/** An exact-values leaf: the field's value, or one element of it when it is an array (flattened), is one of them. */
function holdsOneOf(values: readonly unknown[], value: unknown): boolean {
  return Array.isArray(value)
    ? flatten(value).some((element) => values.includes(element))
    : values.includes(value);
}

function compileLeaf(conditions: readonly Condition[], path: (string | number)[]): LeafTest {
  // Exact values are the common leaf (a type, a country): one small closure rather than one per value, which counts
  // when a file holds thousands of rules.
  if (conditions.every((c) => !isObject(c))) {
    const values: readonly unknown[] = [...conditions];
    return (value) => holdsOneOf(values, value);
  }
  const tests = conditions.map((c, i) => compileCondition(c, [...path, i]));
  const onMissing = tests.some((t) => t.matchesMissing);
  // A field is judged by its leaf values as a whole: with none it is missing (so `exists: false` holds), with any —
  // a `null` among them — it is present, whatever objects sit beside them in an array.
  const holds = (leaf: unknown) => tests.some((t) => t.present(leaf));
  return (value) => {
    // A scalar, the common case, is judged without building a list of leaves.
    if (!Array.isArray(value)) return value === undefined || !isLeaf(value) ? onMissing : holds(value);
    let present = false;
    for (const element of flatten(value)) {
      if (!isLeaf(element)) continue;
      if (holds(element)) return true;
      present = true;
    }
    return present ? false : onMissing;
  };
}

interface ConditionTest {
  /** Whether the condition holds for one leaf value of a present field (one element of an array). */
  readonly present: LeafTest;
  /** Whether the condition holds for a missing field. */
  readonly matchesMissing: boolean;
}

function compileCondition(condition: Condition, path: (string | number)[]): ConditionTest {
  if (!isObject(condition)) {
    return { present: (v) => v === condition, matchesMissing: false };
  }
  const [operator, argument] = Object.entries(condition)[0] ?? [];
  const at = [...path, operator ?? ''];
  switch (operator) {
    case 'exists':
      return argument === true
        ? { present: () => true, matchesMissing: false }
        : { present: () => false, matchesMissing: true };
    case 'anything-but': {
      const inner = anythingBut(argument, at);
      return { present: (v) => !inner(v), matchesMissing: false };
    }
    default:
      return { present: stringOperator(operator, argument, at), matchesMissing: false };
  }
}

function stringOperator(operator: string | undefined, argument: unknown, at: (string | number)[]): LeafTest {
  switch (operator) {
    case 'prefix':
      return isObject(argument)
        ? caseless((v, a) => v.startsWith(a), String(argument['equals-ignore-case']))
        : strings((v) => v.startsWith(String(argument)));
    case 'suffix':
      return isObject(argument)
        ? caseless((v, a) => v.endsWith(a), String(argument['equals-ignore-case']))
        : strings((v) => v.endsWith(String(argument)));
    case 'equals-ignore-case':
      return caseless((v, a) => v === a, String(argument));
    case 'wildcard': {
      return strings(wildcard(String(argument), at));
    }
    case 'numeric':
      return numeric(argument as readonly unknown[], at);
    case 'cidr':
      return cidr(String(argument), at);
    default:
      // The schema admits only the operators above.
      throw new PatternDefinitionError(at, `unknown operator "${String(operator)}"`);
  }
}

/** `anything-but`: the test its value must fail. Values (all strings or all numbers), or one string operator. */
function anythingBut(argument: unknown, at: (string | number)[]): LeafTest {
  if (isObject(argument)) {
    const [operator, inner] = Object.entries(argument)[0] ?? [];
    if (Array.isArray(inner)) {
      const tests = inner.map((one, i) => stringOperator(operator, one, [...at, operator ?? '', i]));
      return (v) => tests.some((t) => t(v));
    }
    return stringOperator(operator, inner, [...at, operator ?? '']);
  }
  const values = Array.isArray(argument) ? (argument as unknown[]) : [argument];
  const kinds = new Set(values.map((v) => typeof v));
  if (kinds.size > 1) throw new PatternDefinitionError(at, 'must list only strings or only numbers');
  return (v) => values.includes(v);
}

function strings(test: (value: string) => boolean): LeafTest {
  return (v) => typeof v === 'string' && test(v);
}

function caseless(test: (value: string, argument: string) => boolean, argument: string): LeafTest {
  const folded = fold(argument);
  return strings((v) => test(fold(v), folded));
}

function fold(s: string): string {
  return s.toLowerCase();
}

/**
 * `*` stands for any run of characters; `\*` is a star and `\\` a backslash. `**` is refused, as EventBridge does.
 *
 * Matched without a regular expression: the literal runs between stars are found left to right with indexOf (the
 * leftmost place of each run is always a safe choice, since what follows a star can start anywhere after it). That is
 * O(value × pattern) at worst and never backtracks: `*a*a*a*a*a*a*a*a*b` against 200 "a"s, or a wildcard over a
 * 540 KB value, takes microseconds to milliseconds where a backtracking regex took minutes.
 */
function wildcard(source: string, at: (string | number)[]): (value: string) => boolean {
  if (source.includes('**')) throw new PatternDefinitionError(at, 'must not hold consecutive "*"');
  const runs: string[] = [''];
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '\\') {
      const next = source[i + 1];
      if (next !== '*' && next !== '\\') {
        throw new PatternDefinitionError(at, 'a "\\" must be followed by "*" or "\\"');
      }
      runs[runs.length - 1] += next;
      i += 1;
    } else if (c === '*') {
      runs.push('');
    } else {
      runs[runs.length - 1] += c;
    }
  }
  const first = runs[0] as string;
  if (runs.length === 1) return (value) => value === first;
  const last = runs[runs.length - 1] as string;
  const middle = runs.slice(1, -1).filter((run) => run !== '');
  return (value) => {
    const end = value.length - last.length;
    if (end < first.length || !value.startsWith(first) || !value.endsWith(last)) return false;
    let from = first.length;
    for (const run of middle) {
      const found = value.indexOf(run, from);
      if (found < 0 || found + run.length > end) return false;
      from = found + run.length;
    }
    return true;
  };
}

/** `10.0.0.0/24` or `2001:db8::/32`: a string holding an IP address within that block. */
function cidr(block: string, at: (string | number)[]): LeafTest {
  const slash = block.lastIndexOf('/');
  const network = slash < 0 ? block : block.slice(0, slash);
  const family = isIP(network);
  const bits = slash < 0 ? (family === 6 ? 128 : 32) : Number(block.slice(slash + 1));
  if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
    throw new PatternDefinitionError(at, 'must be an IPv4 or IPv6 block such as 10.0.0.0/24');
  }
  const list = new BlockList();
  const type = family === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(network, bits, type);
  return strings((v) => isIP(v) === family && list.check(v, type));
}

const COMPARATORS: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** `["=", 3]`, `[">", 0]`, `[">", 0, "<=", 5]`: one equality, or at most one lower and one upper bound. */
function numeric(argument: readonly unknown[], at: (string | number)[]): LeafTest {
  const bounds: { op: string; limit: number }[] = [];
  for (let i = 0; i < argument.length; i += 2) {
    const op = argument[i];
    const limit = argument[i + 1];
    if (typeof op !== 'string' || !(op in COMPARATORS)) {
      throw new PatternDefinitionError([...at, i], 'must be one of "=", "<", "<=", ">", ">="');
    }
    if (typeof limit !== 'number' || !Number.isFinite(limit)) {
      throw new PatternDefinitionError([...at, i + 1], 'must be a number');
    }
    bounds.push({ op, limit });
  }
  const lower = bounds.filter((b) => b.op === '>' || b.op === '>=');
  const upper = bounds.filter((b) => b.op === '<' || b.op === '<=');
  const equal = bounds.filter((b) => b.op === '=');
  if (equal.length > 0 && bounds.length > 1) {
    throw new PatternDefinitionError(at, '"=" cannot be combined with another comparison');
  }
  if (lower.length > 1 || upper.length > 1) {
    throw new PatternDefinitionError(at, 'takes at most one lower and one upper bound');
  }
  if (lower[0] && upper[0] && lower[0].limit >= upper[0].limit) {
    throw new PatternDefinitionError(at, 'the lower bound must be below the upper bound');
  }
  const checks = bounds.map(({ op, limit }) => {
    const compare = COMPARATORS[op] as (a: number, b: number) => boolean;
    return (v: number) => compare(v, limit);
  });
  return (v) => typeof v === 'number' && checks.every((check) => check(v));
}

function isLeaf(value: unknown): boolean {
  return value === null || typeof value !== 'object';
}

function fieldOf(value: unknown, field: string): unknown {
  return isObject(value) && Object.hasOwn(value, field) ? value[field] : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Fields every match requires to hold one of a few exact values (outside any `$or`), for indexing: the path from the
 * event's root and the values allowed there. `$kafka` fields are left out.
 */
export function exactFields(pattern: Pattern | undefined): { path: string[]; values: PatternValue[] }[] {
  const out: { path: string[]; values: PatternValue[] }[] = [];
  const walk = (p: Pattern, at: string[]) => {
    if (at.length > MAX_PATTERN_DEPTH) return; // compilePattern refuses such a pattern
    for (const [field, spec] of Object.entries(p)) {
      if (field === OR || (at.length === 0 && field === KAFKA_KEY)) continue;
      if (Array.isArray(spec)) {
        const conditions = spec as readonly Condition[];
        if (conditions.every((c) => !isObject(c))) {
          out.push({ path: [...at, field], values: conditions as PatternValue[] });
        }
      } else {
        walk(spec as Pattern, [...at, field]);
      }
    }
  };
  if (pattern) walk(pattern, []);
  return out;
}

/**
 * Every leaf value the event holds at `path`, descending through arrays: a superset of what a leaf there can match,
 * which is all an index lookup needs.
 */
export function valuesAt(event: unknown, path: readonly string[]): unknown[] {
  let current: unknown[] = [event];
  for (const field of path) {
    const next: unknown[] = [];
    for (const value of current) {
      for (const item of Array.isArray(value) ? flatten(value) : [value]) {
        const child = fieldOf(item, field);
        if (child !== undefined) next.push(child);
      }
    }
    current = next;
  }
  return current.flatMap((v): readonly unknown[] => (Array.isArray(v) ? flatten(v) : [v]));
}
