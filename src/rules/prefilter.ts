/**
 * Decide before decoding. Most events on a business topic match no rule, and parsing each one to find that out costs
 * more than everything else the bridge does with it. From the rules of a topic this derives what an event's raw JSON
 * bytes must contain to possibly match (the string values and prefixes some required field must hold), and tests the
 * bytes for them before any UTF-8 decode, JSON parse, span or scheduling work, the way grep tools extract literals
 * before running a regular expression. Only events that pass are decoded and matched for real.
 *
 * The one promise: an event the prefilter skips matches no rule (it may let through events that then match nothing).
 * Why the byte test is sound:
 * - a string leaf that equals `v` is written in the JSON text as `"` + v + `"`, unless some character of it is
 *   escaped (`\u0041`, `\"`, `\/`…); escapes need a backslash, so a value holding any backslash byte is always decoded;
 * - without escapes, every `"` delimits a string (a key or a value), so the strings of the text are exactly the runs
 *   between consecutive pairs of quotes, compared here byte for byte with each literal's UTF-8 bytes (well-formed
 *   UTF-8 is one-to-one with the decoded text, and the decoder refuses any other);
 * - exact string values and non-empty `prefix` strings are the only conditions that yield literals; numbers (5, 5.0 and
 *   5e0 are one value), booleans, null, suffix, wildcard, equals-ignore-case, anything-but, exists, numeric, cidr and
 *   `$kafka` do not, and a rule with no field whose conditions all yield literals makes its topic pass everything.
 *   `$or` yields the union of its alternatives' literals, or nothing when one alternative yields none.
 *
 * What is not decided here is left to the decoder, so that whatever it dead-letters today it still does: framed
 * (Schema Registry) values, values over MAX_EVENT_BYTES, topics outside PLAIN_JSON_TOPICS, text that is not a JSON
 * object (`{` … `}` around optional whitespace), text with unbalanced quotes and text that is not valid UTF-8 all pass.
 * A malformed object that holds none of the literals (`{"type": "Other",}`) is the one case settled as "matched no
 * rule" where decoding would have dead-lettered it; EVENT_PREFILTER=false restores decoding every event.
 */
import { isUtf8 } from 'node:buffer';
import { KAFKA_KEY, type Condition, type Pattern } from './pattern.js';
import type { Rule, RuleSet } from './rule-set.js';

/** What a pattern requires: its event holds a string leaf equal to one of `exact` or starting with one of `prefix`. */
export interface Requirement {
  readonly exact: readonly string[];
  readonly prefix: readonly string[];
}

const OR = '$or';

/**
 * The literals every event matching `pattern` holds one of; null when no such set can be derived (the pattern can
 * match an event whatever its strings). Of several required fields, the one with the fewest literals is taken.
 */
export function requirementOf(pattern: Pattern | undefined): Requirement | null {
  return pattern ? objectRequirement(pattern, true) : null;
}

function objectRequirement(pattern: Pattern, top: boolean): Requirement | null {
  let best: Requirement | null = null;
  for (const [field, spec] of Object.entries(pattern)) {
    if (top && field === KAFKA_KEY) continue;
    let found: Requirement | null;
    if (field === OR) {
      found = union((spec as readonly Pattern[]).map((alternative) => objectRequirement(alternative, top)));
    } else if (Array.isArray(spec)) {
      found = leafRequirement(spec as readonly Condition[]);
    } else {
      // A nested pattern matches a missing or non-object field only when all its leaves accept a missing field,
      // and a leaf that yields literals never does.
      found = objectRequirement(spec as Pattern, false);
    }
    if (found && (!best || weight(found) < weight(best))) best = found;
  }
  return best;
}

function leafRequirement(conditions: readonly Condition[]): Requirement | null {
  const exact: string[] = [];
  const prefix: string[] = [];
  for (const condition of conditions) {
    if (typeof condition === 'string') {
      exact.push(condition);
      continue;
    }
    if (typeof condition !== 'object' || condition === null || Array.isArray(condition)) return null;
    const entries = Object.entries(condition);
    const [operator, argument] = entries[0] ?? [];
    // A prefix that ends inside a surrogate pair matches text whose bytes do not start with the prefix's bytes.
    if (
      entries.length !== 1 ||
      operator !== 'prefix' ||
      typeof argument !== 'string' ||
      argument === '' ||
      !isWellFormed(argument)
    ) {
      return null;
    }
    prefix.push(argument);
  }
  return conditions.length === 0 ? null : { exact, prefix };
}

function union(requirements: readonly (Requirement | null)[]): Requirement | null {
  if (requirements.length === 0 || requirements.some((r) => r === null)) return null;
  const present = requirements as readonly Requirement[];
  return { exact: present.flatMap((r) => r.exact), prefix: present.flatMap((r) => r.prefix) };
}

/** Fewer literals to look for is more selective; a prefix weighs a little more than an exact value. */
function weight(requirement: Requirement): number {
  return requirement.exact.length + 1.5 * requirement.prefix.length;
}

/** One topic's literals as UTF-8 bytes, bucketed by length and end bytes so that most strings are refused at once. */
class TopicLiterals {
  readonly #exact = new Map<number, Buffer[]>();
  readonly #prefix = new Map<number, Buffer[]>();
  readonly #prefixLengths: number[];

  constructor(requirements: readonly Requirement[]) {
    const lengths = new Set<number>();
    for (const { exact, prefix } of requirements) {
      // A literal that JSON must escape can appear only escaped, and escaped text is always decoded.
      for (const value of exact) {
        if (writtenAsIs(value)) add(this.#exact, Buffer.from(value, 'utf8'));
      }
      for (const value of prefix) {
        if (!writtenAsIs(value)) continue;
        const bytes = Buffer.from(value, 'utf8');
        lengths.add(bytes.length);
        add(this.#prefix, bytes);
      }
    }
    this.#prefixLengths = [...lengths].sort((a, b) => a - b);
  }

  /** Whether the string at value[start, end) is one of the literals or starts with one of the prefixes. */
  holds(value: Buffer, start: number, end: number): boolean {
    const length = end - start;
    if (this.#exact.size > 0) {
      const candidates = this.#exact.get(bucket(value, start, length));
      if (candidates && candidates.some((c) => sameBytes(value, start, c, c.length))) return true;
    }
    for (const l of this.#prefixLengths) {
      if (l > length) break;
      const candidates = this.#prefix.get(bucket(value, start, l));
      if (candidates && candidates.some((c) => sameBytes(value, start, c, l))) return true;
    }
    return false;
  }
}

function writtenAsIs(text: string): boolean {
  return isWellFormed(text) && JSON.stringify(text).length === text.length + 2;
}

/** No lone surrogate (String.prototype.isWellFormed, which Node 20's TypeScript lib does not declare). */
function isWellFormed(text: string): boolean {
  return Buffer.from(text, 'utf8').toString('utf8') === text;
}

function add(map: Map<number, Buffer[]>, bytes: Buffer): void {
  const key = bucket(bytes, 0, bytes.length);
  const list = map.get(key);
  if (list) list.push(bytes);
  else map.set(key, [bytes]);
}

/** Length, first and last byte: distinct for most literals of a rules file, and read without allocating. */
function bucket(bytes: Buffer, start: number, length: number): number {
  if (length === 0) return 0;
  return length * 65536 + (bytes[start] as number) * 256 + (bytes[start + length - 1] as number);
}

function sameBytes(value: Buffer, start: number, literal: Buffer, length: number): boolean {
  for (let i = 0; i < length; i++) if (value[start + i] !== literal[i]) return false;
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isJsonSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** A topic whose rules yield no literals: every event of it must be decoded. */
const EVERY_EVENT = 'every event';

/**
 * The prefilter of one rule set: per topic, the literals of its rules. A topic no rule reads has none, so its events
 * (matching nothing) are all skipped.
 */
export class Prefilter {
  readonly #byTopic = new Map<string, TopicLiterals | typeof EVERY_EVENT>();
  static readonly #none = new TopicLiterals([]);

  constructor(rules: readonly Rule[]) {
    const perTopic = new Map<string, (Requirement | null)[]>();
    for (const rule of rules) {
      const requirement = requirementOf(rule.pattern);
      for (const topic of rule.topics) {
        const list = perTopic.get(topic) ?? [];
        list.push(requirement);
        perTopic.set(topic, list);
      }
    }
    for (const [topic, requirements] of perTopic) {
      this.#byTopic.set(
        topic,
        requirements.some((r) => r === null) ? EVERY_EVENT : new TopicLiterals(requirements as Requirement[]),
      );
    }
  }

  /** Whether every event of `topic` must be decoded (some rule of it yields no literals). */
  decodesAll(topic: string): boolean {
    return this.#byTopic.get(topic) === EVERY_EVENT;
  }

  /**
   * False only when the plain-JSON `value` of an event on `topic` cannot match any rule of the set (and would decode
   * without error if it is the JSON object it looks like); true when it may match, or when the decoder must see it.
   */
  mayMatch(topic: string, value: Buffer): boolean {
    const literals = this.#byTopic.get(topic) ?? Prefilter.#none;
    if (literals === EVERY_EVENT) return true;
    let start = 0;
    let end = value.length - 1;
    while (start <= end && isJsonSpace(value[start])) start++;
    while (end > start && isJsonSpace(value[end])) end--;
    if (value[start] !== OPEN_BRACE || value[end] !== CLOSE_BRACE) return true;
    let open = -1;
    // Bytes OR-ed together: ASCII text (the usual case) is valid UTF-8 without asking isUtf8.
    let bits = 0;
    for (let i = start + 1; i < end; i++) {
      const byte = value[i] as number;
      bits |= byte;
      if (byte === BACKSLASH) return true;
      if (byte !== QUOTE) continue;
      if (open < 0) {
        open = i + 1;
      } else {
        if (literals.holds(value, open, i)) return true;
        open = -1;
      }
    }
    // Unbalanced quotes or invalid UTF-8: not JSON, which the decoder dead-letters, as it did before.
    return open >= 0 || (bits > 0x7f && !isUtf8(value));
  }
}

const built = new WeakMap<RuleSet, Prefilter>();

/** The prefilter of `rules`, built once per rule set: a reload brings a new set, and with it a new prefilter. */
export function prefilterFor(rules: RuleSet): Prefilter {
  let prefilter = built.get(rules);
  if (!prefilter) {
    prefilter = new Prefilter(rules.rules);
    built.set(rules, prefilter);
  }
  return prefilter;
}
