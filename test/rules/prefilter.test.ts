import { describe, expect, it } from 'vitest';
import { compileAction } from '../../src/rules/action.js';
import { compilePattern, exactFields, type KafkaMeta, type Pattern } from '../../src/rules/pattern.js';
import { Prefilter, prefilterFor, requirementOf } from '../../src/rules/prefilter.js';
import { RuleSet, type Rule } from '../../src/rules/rule-set.js';
import { parseRules } from '../../src/rules/rules-file.js';

const action = compileAction(
  { agentlessEmail: { from: { email: 'a@b.co' }, to: { email: 'a@b.co' }, text: 'x' } },
  'action',
);

function rule(name: string, topic: string, match: Pattern | undefined): Rule {
  return {
    name,
    topics: [topic],
    matches: compilePattern(match),
    action,
    exactFields: exactFields(match),
    delivery: 'at-most-once',
    ...(match && { pattern: match }),
  };
}

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('Prefilter, cases', () => {
  const prefilter = new Prefilter([
    rule('shipped', 't', { type: ['OrderShipped'] }),
    rule('refund', 't', { detail: { kind: [{ prefix: 'refund-' }] }, amount: [{ numeric: ['>', 0] }] }),
  ]);

  it('skips an object that holds none of the literals', () => {
    expect(prefilter.mayMatch('t', bytes('{"type":"OrderPlaced","kind":"refund"}'))).toBe(false);
    expect(prefilter.mayMatch('t', bytes(' \n{ "type" : "Other" }\t'))).toBe(false);
    expect(prefilter.mayMatch('t', bytes('{}'))).toBe(false);
  });

  it('lets through an object that holds an exact value or a prefix, anywhere', () => {
    expect(prefilter.mayMatch('t', bytes('{"type":"OrderShipped"}'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"a":["x","OrderShipped"]}'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"detail":{"kind":"refund-full"}}'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"OrderShipped":1}'))).toBe(true);
  });

  it('lets through any text with an escape, since a value may be written escaped', () => {
    expect(prefilter.mayMatch('t', bytes('{"type":"\\u004FrderShipped"}'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"type":"a\\/b"}'))).toBe(true);
  });

  it('leaves to the decoder whatever it would dead-letter', () => {
    expect(prefilter.mayMatch('t', bytes('not json'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"type": "Notice", '))).toBe(true);
    expect(prefilter.mayMatch('t', Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('{"type": "Notice}'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes('["OrderPlaced"]'))).toBe(true);
    expect(prefilter.mayMatch('t', bytes(''))).toBe(true);
  });

  it('skips every well-formed object of a topic no rule reads', () => {
    expect(prefilter.mayMatch('other', bytes('{"type":"OrderShipped"}'))).toBe(false);
  });

  it('decodes every event of a topic with a rule that yields no literal', () => {
    for (const match of [
      undefined,
      {},
      { n: [5] },
      { ok: [true] },
      { v: [null] },
      { type: [{ suffix: 'Shipped' }] },
      { type: [{ wildcard: 'Order*' }] },
      { type: [{ 'equals-ignore-case': 'ordershipped' }] },
      { type: [{ 'anything-but': 'OrderPlaced' }] },
      { gone: [{ exists: false }] },
      { type: ['OrderShipped', 5] },
      { type: [{ prefix: '' }] },
      // A prefix ending inside a surrogate pair: "😀" starts with it, but its bytes do not.
      { face: [{ prefix: '\uD83D' }] },
      { $or: [{ type: ['OrderShipped'] }, { n: [{ numeric: ['>', 1] }] }] },
      { $kafka: { key: ['k'] } },
    ] as (Pattern | undefined)[]) {
      const one = new Prefilter([rule('r', 't', match)]);
      expect(one.decodesAll('t'), JSON.stringify(match)).toBe(true);
      expect(one.mayMatch('t', bytes('{"type":"Other"}'))).toBe(true);
    }
  });

  it('takes the most selective required field, and the union of $or', () => {
    expect(requirementOf({ type: ['A', 'B'], kind: ['C'], n: [1] })).toEqual({ exact: ['C'], prefix: [] });
    expect(requirementOf({ $or: [{ a: ['A'] }, { b: { c: [{ prefix: 'P' }] } }] })).toEqual({
      exact: ['A'],
      prefix: ['P'],
    });
  });

  it('is rebuilt with each rule set: a reload brings its own', () => {
    const first = new RuleSet([rule('a', 't', { type: ['A'] })]);
    const second = new RuleSet([rule('b', 't', { type: ['B'] })]);
    expect(prefilterFor(first)).toBe(prefilterFor(first));
    expect(prefilterFor(first).mayMatch('t', bytes('{"type":"B"}'))).toBe(false);
    expect(prefilterFor(second).mayMatch('t', bytes('{"type":"B"}'))).toBe(true);
  });

  it('sees the patterns of a parsed rules file', () => {
    const set = parseRules(
      JSON.stringify({
        version: 1,
        rules: [
          {
            name: 'r',
            topics: ['t'],
            match: { type: ['OrderShipped'] },
            action: {
              agentlessEmail: { from: { email: 'a@b.co' }, to: { email: '{{ email }}' }, text: 'x' },
            },
          },
        ],
      }),
      'rules.json',
    );
    expect(prefilterFor(set).decodesAll('t')).toBe(false);
    expect(prefilterFor(set).mayMatch('t', bytes('{"type":"Other"}'))).toBe(false);
    expect(prefilterFor(set).mayMatch('t', bytes('{"type":"OrderShipped"}'))).toBe(true);
  });
});

// ───────────────────────── the equivalence property, on generated rules and events ─────────────────────────

/** mulberry32: a small seeded generator, so that a failure can be replayed from its seed. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  return { next, int, pick };
}
type Random = ReturnType<typeof generator>;

// Strings that collide on purpose: prefixes of one another, non-ASCII, astral, characters JSON must escape.
const ALL_WORDS = [
  'OrderShipped',
  'Order',
  'OrderPlaced',
  'order',
  'a',
  '',
  'é',
  'ée',
  '日本',
  '日',
  '😀',
  '😀x',
  'x"y',
  'back\\slash',
  'tab\t',
  'a/b',
  '\u2028',
  '\u007f',
  'null',
  '5',
  'true',
];
// Astral and non-ASCII only: prefixes that end inside a character (a surrogate pair, a multi-byte sequence).
const UNICODE_WORDS = ['😀', '😀x', '😀😀', '日本', '日', 'é', 'ée', 'a'];
let WORDS = ALL_WORDS;
const FIELDS = ['type', 'status', 'detail', 'tags', 'n'];

function condition(r: Random): unknown {
  switch (r.int(12)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return r.pick(WORDS);
    case 4:
    case 5:
      return { prefix: r.pick(WORDS.filter((w) => w !== '')).slice(0, 1 + r.int(3)) };
    case 6:
      return r.pick([5, 0, 1.5, true, false, null]);
    case 7:
      return { suffix: r.pick(WORDS) };
    case 8:
      return { 'anything-but': r.pick(WORDS) };
    case 9:
      return { exists: r.next() < 0.5 };
    case 10:
      return { 'equals-ignore-case': r.pick(WORDS) };
    default:
      return { numeric: ['>', 0] };
  }
}

function pattern(r: Random, depth: number): Pattern {
  const out: Record<string, unknown> = {};
  const fields = 1 + r.int(3);
  for (let i = 0; i < fields; i++) {
    const kind = r.int(10);
    if (kind < 6 || depth >= 2) {
      out[r.pick(FIELDS)] = Array.from({ length: 1 + r.int(3) }, () => condition(r));
    } else if (kind < 8) {
      out[r.pick(FIELDS)] = pattern(r, depth + 1);
    } else if (kind < 9) {
      out['$or'] = [pattern(r, depth + 1), pattern(r, depth + 1)];
    } else if (depth === 0) {
      out['$kafka'] = { key: [r.pick(['k1', 'k2'])] };
    }
  }
  return out as Pattern;
}

function leaf(r: Random): unknown {
  switch (r.int(8)) {
    case 0:
      return r.int(10);
    case 1:
      return r.pick([true, false, null]);
    case 2:
      // A word with something after it, so that prefixes hold without the whole word.
      return r.pick(WORDS) + r.pick(WORDS);
    default:
      return r.pick(WORDS);
  }
}

function eventValue(r: Random, depth: number): unknown {
  const kind = r.int(10);
  if (kind < 6 || depth >= 3) return leaf(r);
  if (kind < 8) return Array.from({ length: r.int(4) }, () => eventValue(r, depth + 1));
  return eventObject(r, depth + 1);
}

function eventObject(r: Random, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = r.int(5);
  for (let i = 0; i < fields; i++) out[r.pick([...FIELDS, 'other'])] = eventValue(r, depth);
  return out;
}

/** JSON text as a producer may write it: random whitespace, and any character of a string possibly escaped. */
function write(r: Random, value: unknown, escapes: boolean): string {
  const space = () => r.pick(['', '', ' ', '\n', '\t ']);
  if (typeof value === 'string') {
    if (!escapes || r.next() < 0.5) return JSON.stringify(value);
    let text = '"';
    for (const unit of value.split('')) {
      const code = unit.charCodeAt(0);
      if (r.next() < 0.3)
        text += `\\u${code.toString(16).padStart(4, '0')[r.next() < 0.5 ? 'toUpperCase' : 'toLowerCase']()}`;
      else if (unit === '/' && r.next() < 0.5) text += '\\/';
      else text += JSON.stringify(unit).slice(1, -1);
    }
    return `${text}"`;
  }
  if (Array.isArray(value))
    return `[${space()}${value.map((v) => write(r, v, escapes)).join(`,${space()}`)}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(
      ([k, v]) => `${write(r, k, escapes)}${space()}:${space()}${write(r, v, escapes)}`,
    );
    return `${space()}{${space()}${entries.join(`,${space()}`)}${space()}}${space()}`;
  }
  return JSON.stringify(value);
}

describe('Prefilter, equivalence with matching', () => {
  it.each([
    ['every kind of string', ALL_WORDS, 20261206],
    ['unicode strings', UNICODE_WORDS, 7],
  ])('never skips an event a rule matches (10,000 generated rule sets × 5 events, %s)', (_, words, seed) => {
    WORDS = words;
    const r = generator(seed);
    let matched = 0;
    let skipped = 0;
    let escapedMatched = 0;
    for (let i = 0; i < 10_000; i++) {
      const rules = Array.from({ length: 1 + r.int(4) }, (_, j) => rule(`r${j}`, 't', pattern(r, 0)));
      const prefilter = new Prefilter(rules);
      const ruleSet = new RuleSet(rules);
      const kafka: KafkaMeta = { key: r.pick(['k1', 'k2']), headers: {} };
      for (let j = 0; j < 5; j++) {
        const event = eventObject(r, 0);
        // Events built from the patterns' own words, so that many match.
        const escapes = r.next() < 0.3;
        const text = write(r, event, escapes);
        expect(JSON.parse(text)).toEqual(event);
        const matches = ruleSet.match('t', event, kafka).length > 0;
        const passes = prefilter.mayMatch('t', Buffer.from(text, 'utf8'));
        if (matches && !passes) {
          throw new Error(
            `case ${i}/${j} (seed ${seed}) skipped an event that matches: rules ${JSON.stringify(rules.map((x) => x.pattern))}, event ${text}`,
          );
        }
        if (matches) matched++;
        if (matches && escapes && text.includes('\\')) escapedMatched++;
        if (!passes) skipped++;
      }
    }
    // The property is not vacuous: both sides of it occur, often.
    expect(matched).toBeGreaterThan(2_000);
    expect(skipped).toBeGreaterThan(2_000);
    expect(escapedMatched).toBeGreaterThan(100);
  });
});
