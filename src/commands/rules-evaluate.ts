import { isBridgeError } from '../errors.js';
import type { GenesysRequest } from '../genesys/client.js';
import { decode } from '../kafka/decoder.js';
import { kafkaMetaOf, keyOf, type InboundMessage } from '../kafka/message.js';
import { KAFKA_KEY, compilePattern, valuesAt, type KafkaMeta, type Pattern } from '../rules/pattern.js';
import type { Rule, RuleSet } from '../rules/rule-set.js';
import { templateScope } from '../rules/template.js';
import { plan } from '../pipeline.js';
import { LineCounter, isMap, isNode, isSeq, parseDocument, parse as parseYaml } from 'yaml';
import { Drop } from 'liquidjs';

export interface DryRunInput {
  readonly topic: string;
  /** null: a tombstone. */
  readonly value: Buffer | null;
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
}

export interface DryRunMatch {
  readonly rule: string;
  readonly orderingKey?: string;
  readonly idempotencyKey?: string;
  readonly request: GenesysRequest;
}

export interface DryRunError {
  readonly rule: string | null;
  readonly code: string;
  readonly message: string;
}

export interface DryRunResult {
  /** The keys appear only for a rule that declares its own, so that authors can see what they render. */
  readonly matches: DryRunMatch[];
  readonly errors: DryRunError[];
}

/** Why one rule of the event's topic did or did not send. */
export interface Explanation {
  readonly rule: string;
  readonly matched: boolean;
  /** For a rule that did not match: the first field that failed and what the rule expected. */
  readonly reason?: string;
  /** For a rule that matched: every template field the event has no value for (`field: variable`). */
  readonly missing: readonly { readonly field: string; readonly variable: string }[];
}

export interface Evaluation extends DryRunResult {
  /** One per rule that reads the topic, in file order. */
  readonly explanations: Explanation[];
  /** The file has no rule for the topic. */
  readonly topicUnknown: boolean;
  readonly tombstone: boolean;
}

/**
 * What the bridge would do with one record, and why, with no network call: decode, match, keys, render, check, in the
 * pipeline's own plan (src/pipeline.ts). This is the one place `geb rules test` evaluates an event (the single event,
 * each event of a file, each committed case).
 *
 * `patterns` (rule name → the rule's `match` as written) lets a rule that did not match say which field failed.
 */
export function evaluate(
  rules: RuleSet,
  input: DryRunInput,
  patterns: ReadonlyMap<string, Pattern | undefined> = new Map(),
): Evaluation {
  const message: InboundMessage = {
    topic: input.topic,
    partition: 0,
    offset: '0',
    key: input.key === undefined ? null : Buffer.from(input.key, 'utf8'),
    value: input.value,
    headers: { ...input.headers },
    timestamp: String(Date.now()),
  };
  const ofTopic = rules.rules.filter((rule) => rule.topics.includes(input.topic));
  const result: Evaluation = {
    matches: [],
    errors: [],
    explanations: [],
    topicUnknown: ofTopic.length === 0,
    tombstone: false,
  };
  let event: unknown;
  try {
    const decoded = decode(message);
    if (decoded.kind === 'tombstone') return { ...result, tombstone: true };
    event = decoded.event;
  } catch (error) {
    result.errors.push(errorOf(null, error));
    return result;
  }
  const scope = templateScope(event);
  const kafkaKey = keyOf(message);
  const kafka = kafkaMetaOf(message);
  const matched = new Set(plan.match(rules, message, event));
  for (const rule of ofTopic) {
    if (!matched.has(rule)) {
      result.explanations.push({
        rule: rule.name,
        matched: false,
        reason: whyNot(patterns.get(rule.name), event, kafka),
        missing: [],
      });
      continue;
    }
    try {
      result.matches.push(send(rule, scope, kafkaKey));
      result.explanations.push({ rule: rule.name, matched: true, missing: [] });
    } catch (error) {
      const missing = isBridgeError(error) && error.code === 'TEMPLATE_VARIABLE_MISSING';
      const all = missing ? missingFields(rule, scope, kafkaKey) : [];
      if (all.length > 1) {
        for (const m of all) {
          result.errors.push({
            rule: rule.name,
            code: 'TEMPLATE_VARIABLE_MISSING',
            message: `${m.field}: the event has no value for "${m.variable}"`,
          });
        }
      } else {
        result.errors.push(errorOf(rule.name, error));
      }
      result.explanations.push({ rule: rule.name, matched: true, missing: all });
    }
  }
  return result;
}

/** The plain dry run (what each matching rule sends, and the errors): `evaluate` without the explanations. */
export function dryRun(rules: RuleSet, input: DryRunInput): DryRunResult {
  const { matches, errors } = evaluate(rules, input);
  return { matches, errors };
}

/**
 * The pipeline's plan for one matched rule: keys (a key that cannot be rendered dead-letters the delivery before the
 * action renders), then render and check.
 */
function send(rule: Rule, scope: Record<string, unknown>, kafkaKey: string | undefined): DryRunMatch {
  const [matched] = plan.orderingKeys([rule], scope, kafkaKey);
  const idempotencyKey = matched && plan.idempotencyKey(matched, scope);
  return {
    rule: rule.name,
    ...(rule.orderingKey !== undefined && { orderingKey: matched?.orderingKey }),
    ...(idempotencyKey !== undefined && { idempotencyKey }),
    request: plan.render(rule, scope).request,
  };
}

const MISSING = /^(.*): the event has no value for "(.*)"$/;
const PLACEHOLDER_TEXT = 'missing@placeholder.invalid';

/** Stands in for a missing field: renders as text, and has every field below it (`customer` for `customer.email`). */
class Placeholder extends Drop {
  override liquidMethodMissing(): Placeholder {
    return this;
  }
  override valueOf(): string {
    return PLACEHOLDER_TEXT;
  }
  override toString(): string {
    return PLACEHOLDER_TEXT;
  }
}

/**
 * Every template field of `rule` the event lacks, not only the first that stops the render: each missing variable is
 * given a placeholder and the rule rendered again, until it renders or fails for another reason. Variables a template
 * guards (`default`, `if`) are not reported, since the bridge does not fail on them either.
 */
function missingFields(
  rule: Rule,
  scope: Record<string, unknown>,
  kafkaKey: string | undefined,
): { field: string; variable: string }[] {
  const found: { field: string; variable: string }[] = [];
  const filled = structuredClone(scope);
  for (let turn = 0; turn < 100; turn++) {
    try {
      send(rule, filled, kafkaKey);
      return found;
    } catch (error) {
      if (!isBridgeError(error) || error.code !== 'TEMPLATE_VARIABLE_MISSING') return found;
      const m = MISSING.exec(error.message);
      if (!m) return found;
      const [, field = '', variable = ''] = m;
      if (found.some((f) => f.field === field && f.variable === variable)) return found;
      found.push({ field, variable });
      if (!fill(filled, variable)) return found;
    }
  }
  return found;
}

/** Sets `a.b.c` in `scope` to a placeholder; false where the path cannot be set (an index, a scalar on the way). */
function fill(scope: Record<string, unknown>, variable: string): boolean {
  const path = variable.split('.');
  if (!path.every((p) => /^[A-Za-z_$][\w$-]*$/.test(p))) return false;
  let node: Record<string, unknown> = scope;
  for (const [i, part] of path.entries()) {
    if (i === path.length - 1) {
      node[part] = new Placeholder();
      return true;
    }
    const next = node[part];
    if (next === undefined) node[part] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) return false;
    node = node[part] as Record<string, unknown>;
  }
  return false;
}

/**
 * The first field of `pattern` that the event fails, with what it holds there and what the rule expected. Each field
 * is tried alone, in the order written; nested objects are followed down to the leaf that fails.
 */
function whyNot(pattern: Pattern | undefined, event: unknown, kafka: KafkaMeta): string {
  if (pattern === undefined) return 'no pattern given for this rule';
  const found = firstFailure(pattern, event, kafka, []);
  return (
    found ??
    'every field matches on its own, but not all within one element of the same array (a nested pattern over an array of objects must match inside one element)'
  );
}

function firstFailure(
  pattern: Pattern,
  event: unknown,
  kafka: KafkaMeta,
  prefix: readonly string[],
): string | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (key === '$or') {
      if (!compilePattern(wrap(prefix, { $or: value }))(event, kafka)) {
        const where = prefix.length === 0 ? 'at the top' : `under "${prefix.join('.')}"`;
        return `none of the ${(value as unknown[]).length} $or alternatives ${where} matches`;
      }
      continue;
    }
    const path = [...prefix, key];
    if (Array.isArray(value)) {
      if (!compilePattern(wrap(path, value as Pattern[string]))(event, kafka)) {
        return describe(path, value, actualAt(path, event, kafka));
      }
    } else if (typeof value === 'object' && value !== null) {
      const inner = firstFailure(value as Pattern, event, kafka, path);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

function wrap(path: readonly string[], leaf: Pattern[string] | Pattern): Pattern {
  let out = leaf as Pattern;
  for (let i = path.length - 1; i >= 0; i--) out = { [path[i] as string]: out };
  return out;
}

function actualAt(path: readonly string[], event: unknown, kafka: KafkaMeta): unknown[] {
  return path[0] === KAFKA_KEY ? valuesAt(kafka, path.slice(1)) : valuesAt(event, path);
}

function describe(path: readonly string[], expected: unknown, actual: unknown[]): string {
  const field = `"${path.join('.')}"`;
  const has =
    actual.length === 0
      ? 'the event has no value there'
      : `the event has ${actual.length === 1 ? short(actual[0]) : short(actual)}`;
  return `field ${field}: ${has}; the rule expects ${short(expected)}`;
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function errorOf(rule: string | null, error: unknown): DryRunError {
  return isBridgeError(error)
    ? { rule, code: error.code, message: error.message }
    : { rule, code: 'INTERNAL', message: String(error) };
}

/** Each rule's `match` as written (rule name → pattern), for `whyNot`; empty where the text cannot be read. */
export function patternsOf(rulesText: string): Map<string, Pattern | undefined> {
  const patterns = new Map<string, Pattern | undefined>();
  let doc: unknown;
  try {
    doc = parseYaml(rulesText);
  } catch {
    return patterns;
  }
  const list = (doc as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(list)) return patterns;
  for (const rule of list as { name?: unknown; match?: unknown }[]) {
    if (typeof rule?.name === 'string') patterns.set(rule.name, rule.match as Pattern | undefined);
  }
  return patterns;
}

/**
 * `file:line:col: ` of a rule's template field (`action.agentlessEmail.to.email`) in the rules text, or of the rule when
 * the field is not found; '' when neither is. For messages that should point at the place to fix.
 */
export function fieldLocator(
  rulesText: string,
  source: string,
): (rule: string | null, field?: string) => string {
  const lineCounter = new LineCounter();
  const doc = parseDocument(rulesText, { lineCounter });
  const rules = doc.get('rules', true);
  const names = isSeq(rules) ? rules.items.map((item) => (isMap(item) ? item.get('name') : undefined)) : [];
  return (rule, field) => {
    const index = rule === null ? -1 : names.indexOf(rule);
    if (index < 0) return '';
    const segments = (field ?? '').split('.').filter((s) => s !== '');
    for (let n = segments.length; n >= 0; n--) {
      const node = doc.getIn(['rules', index, ...segments.slice(0, n)], true);
      const offset = isNode(node) ? node.range?.[0] : undefined;
      if (offset !== undefined) {
        const pos = lineCounter.linePos(offset);
        return `${source}:${pos.line}:${pos.col}: `;
      }
    }
    return '';
  };
}
