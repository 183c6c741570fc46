import { describe, expect, it } from 'vitest';
import {
  PatternDefinitionError,
  compilePattern,
  type KafkaMeta,
  type Pattern,
} from '../../src/rules/pattern.js';
import { parseRules } from '../../src/rules/rules-file.js';

type Case = [name: string, pattern: Pattern | undefined, event: unknown, expected: boolean];

function table(title: string, cases: Case[]) {
  describe(title, () => {
    it.each(cases)('%s', (_name, pattern, event, expected) => {
      expect(compilePattern(pattern)(event)).toBe(expected);
    });
  });
}

table('exact values', [
  ['no pattern matches everything', undefined, { any: 1 }, true],
  ['an empty pattern matches everything', {}, {}, true],
  ['one of the listed values', { type: ['A', 'B'] }, { type: 'B' }, true],
  ['a value not listed', { type: ['A'] }, { type: 'C' }, false],
  ['a missing field', { type: ['A'] }, {}, false],
  ['a number never equals a string', { n: [5] }, { n: '5' }, false],
  ['a string never equals a number', { n: ['5'] }, { n: 5 }, false],
  ['numbers compare by value', { n: [5] }, { n: 5.0 }, true],
  ['true never equals "true"', { ok: [true] }, { ok: 'true' }, false],
  ['booleans', { ok: [true] }, { ok: true }, true],
  ['null matches null', { x: [null] }, { x: null }, true],
  ['null does not match a missing field', { x: [null] }, {}, false],
  ['null does not match ""', { x: [null] }, { x: '' }, false],
  ['"" matches ""', { x: [''] }, { x: '' }, true],
  ['"" does not match null', { x: [''] }, { x: null }, false],
  ['a value is case-sensitive', { type: ['a'] }, { type: 'A' }, false],
  ['an array matches when any element does', { tags: ['vip'] }, { tags: ['new', 'vip'] }, true],
  ['an array with no listed element', { tags: ['vip'] }, { tags: ['new'] }, false],
  ['an empty array is like a missing field', { tags: ['vip'] }, { tags: [] }, false],
  ['an object is not a leaf value', { customer: ['gold'] }, { customer: { tier: 'gold' } }, false],
  ['all fields must match', { a: ['1'], b: ['2'] }, { a: '1', b: '3' }, false],
  ['all fields matching', { a: ['1'], b: ['2'] }, { a: '1', b: '2' }, true],
  ['inherited properties are not fields', { toString: ['x'] }, {}, false],
  ['a non-object event', { type: ['A'] }, 'A', false],
]);

table('nested objects', [
  ['nested field', { customer: { tier: ['gold'] } }, { customer: { tier: 'gold' } }, true],
  ['nested field missing', { customer: { tier: ['gold'] } }, { customer: {} }, false],
  ['nested pattern on a scalar', { customer: { tier: ['gold'] } }, { customer: 'gold' }, false],
  ['parent missing', { customer: { tier: ['gold'] } }, {}, false],
  ['deeply nested', { a: { b: { c: [1] } } }, { a: { b: { c: 1 } } }, true],
  ['over an array of objects', { items: { sku: ['X'] } }, { items: [{ sku: 'Y' }, { sku: 'X' }] }, true],
  [
    'fields of an array element must match within one element',
    { items: { sku: ['X'], qty: [2] } },
    {
      items: [
        { sku: 'X', qty: 1 },
        { sku: 'Y', qty: 2 },
      ],
    },
    false,
  ],
  [
    'fields within the same element',
    { items: { sku: ['X'], qty: [2] } },
    {
      items: [
        { sku: 'Y', qty: 1 },
        { sku: 'X', qty: 2 },
      ],
    },
    true,
  ],
]);

table('prefix and suffix', [
  ['prefix', { id: [{ prefix: 'ord-' }] }, { id: 'ord-1' }, true],
  ['prefix not matching', { id: [{ prefix: 'ord-' }] }, { id: 'inv-1' }, false],
  ['prefix is case-sensitive', { id: [{ prefix: 'ord-' }] }, { id: 'ORD-1' }, false],
  ['prefix ignoring case', { id: [{ prefix: { 'equals-ignore-case': 'ord-' } }] }, { id: 'ORD-1' }, true],
  ['prefix never matches a number', { n: [{ prefix: '1' }] }, { n: 12 }, false],
  ['empty prefix matches any string', { s: [{ prefix: '' }] }, { s: 'x' }, true],
  ['prefix over an array', { s: [{ prefix: 'b' }] }, { s: ['a', 'bc'] }, true],
  ['suffix', { f: [{ suffix: '.png' }] }, { f: 'a.png' }, true],
  ['suffix not matching', { f: [{ suffix: '.png' }] }, { f: 'a.PNG' }, false],
  ['suffix ignoring case', { f: [{ suffix: { 'equals-ignore-case': '.png' } }] }, { f: 'a.PNG' }, true],
  ['suffix on a missing field', { f: [{ suffix: '.png' }] }, {}, false],
]);

table('equals-ignore-case', [
  ['same letters, other case', { s: [{ 'equals-ignore-case': 'alice' }] }, { s: 'ALICE' }, true],
  ['different letters', { s: [{ 'equals-ignore-case': 'alice' }] }, { s: 'alicia' }, false],
  ['never a number', { s: [{ 'equals-ignore-case': '1' }] }, { s: 1 }, false],
]);

table('wildcard', [
  ['star in the middle', { p: [{ wildcard: 'dir/*.png' }] }, { p: 'dir/a/b.png' }, true],
  ['star matches nothing too', { p: [{ wildcard: 'dir/*.png' }] }, { p: 'dir/.png' }, true],
  ['anchored at both ends', { p: [{ wildcard: 'dir/*.png' }] }, { p: 'x/dir/a.png' }, false],
  ['several stars', { p: [{ wildcard: '*/lib/*' }] }, { p: 'a/lib/b' }, true],
  ['escaped star is literal', { p: [{ wildcard: 'a\\*b' }] }, { p: 'a*b' }, true],
  ['escaped star is not a wildcard', { p: [{ wildcard: 'a\\*b' }] }, { p: 'axxb' }, false],
  ['regex characters are literal', { p: [{ wildcard: 'a.b' }] }, { p: 'axb' }, false],
  ['no star: exact', { p: [{ wildcard: 'abc' }] }, { p: 'abc' }, true],
  ['never a number', { p: [{ wildcard: '*' }] }, { p: 1 }, false],
  ['escaped backslash is literal', { p: [{ wildcard: 'a\\\\*' }] }, { p: 'a\\zz' }, true],
  ['prefix and suffix may not overlap', { p: [{ wildcard: 'ab*ba' }] }, { p: 'aba' }, false],
  ['runs in order', { p: [{ wildcard: '*b*a*' }] }, { p: 'xaxbx' }, false],
  ['a run may sit right at the end', { p: [{ wildcard: 'a*b*c' }] }, { p: 'abc' }, true],
]);

// These took minutes (a backtracking regular expression); the test timeout is the bound, the result the assertion.
describe('wildcard against hostile values', () => {
  it('*a*a*a*a*a*a*a*a*b against 200 "a"s: no match, at once', () => {
    const pattern = { p: [{ wildcard: '*a*a*a*a*a*a*a*a*b' }] };
    expect(compilePattern(pattern)({ p: 'a'.repeat(200) })).toBe(false);
    expect(compilePattern(pattern)({ p: `${'a'.repeat(200)}b` })).toBe(true);
  });

  it('reports/*/monthly-*.csv against a 540 KB value: no match, at once', () => {
    const pattern = { file: [{ wildcard: 'reports/*/monthly-*.csv' }] };
    const value = `reports/${'/monthly-'.repeat(60_000)}x`;
    expect(value.length).toBeGreaterThan(540_000);
    expect(compilePattern(pattern)({ file: value })).toBe(false);
    expect(compilePattern(pattern)({ file: `${value}.csv` })).toBe(true);
  });
});

table('anything-but', [
  ['a different value', { s: [{ 'anything-but': 'init' }] }, { s: 'running' }, true],
  ['the same value', { s: [{ 'anything-but': 'init' }] }, { s: 'init' }, false],
  ['a list of values', { s: [{ 'anything-but': ['a', 'b'] }] }, { s: 'b' }, false],
  ['a number', { n: [{ 'anything-but': 123 }] }, { n: 123 }, false],
  ['a list of numbers', { n: [{ 'anything-but': [1, 2] }] }, { n: 3 }, true],
  ['type-strict: "123" is not 123', { n: [{ 'anything-but': 123 }] }, { n: '123' }, true],
  ['a missing field does not match', { s: [{ 'anything-but': 'init' }] }, {}, false],
  ['a nested missing field does not match', { a: { s: [{ 'anything-but': 'x' }] } }, {}, false],
  ['null is a value other than "init"', { s: [{ 'anything-but': 'init' }] }, { s: null }, true],
  ['an object is no leaf value', { s: [{ 'anything-but': 'init' }] }, { s: { a: 1 } }, false],
  ['an array matches when any element differs', { s: [{ 'anything-but': 'a' }] }, { s: ['a', 'b'] }, true],
  ['an array of only excluded values', { s: [{ 'anything-but': 'a' }] }, { s: ['a', 'a'] }, false],
  ['prefix', { r: [{ 'anything-but': { prefix: 'us-' } }] }, { r: 'eu-west-1' }, true],
  ['prefix excluded', { r: [{ 'anything-but': { prefix: 'us-' } }] }, { r: 'us-east-1' }, false],
  ['suffix', { f: [{ 'anything-but': { suffix: '.png' } }] }, { f: 'a.txt' }, true],
  ['suffix excluded', { f: [{ 'anything-but': { suffix: '.png' } }] }, { f: 'a.png' }, false],
  [
    'equals-ignore-case excluded',
    { s: [{ 'anything-but': { 'equals-ignore-case': 'init' } }] },
    { s: 'INIT' },
    false,
  ],
  [
    'equals-ignore-case list',
    { s: [{ 'anything-but': { 'equals-ignore-case': ['a', 'b'] } }] },
    { s: 'C' },
    true,
  ],
  ['wildcard excluded', { p: [{ 'anything-but': { wildcard: '*/lib/*' } }] }, { p: 'x/lib/y' }, false],
  ['wildcard', { p: [{ 'anything-but': { wildcard: '*/lib/*' } }] }, { p: 'x/src/y' }, true],
  ['prefix on a missing field', { r: [{ 'anything-but': { prefix: 'us-' } }] }, {}, false],
]);

table('numeric', [
  ['in range', { n: [{ numeric: ['>', 0, '<=', 5] }] }, { n: 5 }, true],
  ['lower bound excluded', { n: [{ numeric: ['>', 0, '<=', 5] }] }, { n: 0 }, false],
  ['above range', { n: [{ numeric: ['>', 0, '<=', 5] }] }, { n: 5.01 }, false],
  ['>= includes the bound', { n: [{ numeric: ['>=', 10] }] }, { n: 10 }, true],
  ['< excludes the bound', { n: [{ numeric: ['<', 10] }] }, { n: 10 }, false],
  ['equality', { n: [{ numeric: ['=', 3.5] }] }, { n: 3.5 }, true],
  ['negative numbers', { n: [{ numeric: ['<', 0] }] }, { n: -2 }, true],
  ['a numeric string never matches', { n: [{ numeric: ['>', 0] }] }, { n: '5' }, false],
  ['a missing field', { n: [{ numeric: ['>', 0] }] }, {}, false],
  ['null', { n: [{ numeric: ['>', 0] }] }, { n: null }, false],
  ['an array with one element in range', { n: [{ numeric: ['>', 10] }] }, { n: [1, 11] }, true],
]);

table('exists', [
  ['true: present', { a: [{ exists: true }] }, { a: 'x' }, true],
  ['true: present as ""', { a: [{ exists: true }] }, { a: '' }, true],
  ['true: present as null', { a: [{ exists: true }] }, { a: null }, true],
  ['true: present as false', { a: [{ exists: true }] }, { a: false }, true],
  ['true: missing', { a: [{ exists: true }] }, {}, false],
  ['true: an empty array is missing', { a: [{ exists: true }] }, { a: [] }, false],
  ['true: an object is no leaf', { a: [{ exists: true }] }, { a: { b: 1 } }, false],
  ['false: missing', { a: [{ exists: false }] }, {}, true],
  ['false: present', { a: [{ exists: false }] }, { a: 'x' }, false],
  ['false: present as null', { a: [{ exists: false }] }, { a: null }, false],
  ['false: an empty array', { a: [{ exists: false }] }, { a: [] }, true],
  ['false: nested, parent missing', { c: { email: [{ exists: false }] } }, {}, true],
  ['false: nested, parent a scalar', { c: { email: [{ exists: false }] } }, { c: 'x' }, true],
  ['false: nested, present', { c: { email: [{ exists: false }] } }, { c: { email: 'e' } }, false],
  ['true: nested', { c: { email: [{ exists: true }] } }, { c: { email: 'e' } }, true],
]);

table('several conditions on one field (any of)', [
  ['exact or prefix: the prefix', { s: ['x', { prefix: 'ab' }] }, { s: 'abc' }, true],
  ['exact or prefix: the value', { s: ['x', { prefix: 'ab' }] }, { s: 'x' }, true],
  ['exact or prefix: neither', { s: ['x', { prefix: 'ab' }] }, { s: 'y' }, false],
  ['a value or missing', { s: ['x', { exists: false }] }, {}, true],
  ['a value or missing: other value', { s: ['x', { exists: false }] }, { s: 'y' }, false],
]);

table('$or', [
  ['top level: first', { $or: [{ a: [1] }, { b: [2] }] }, { a: 1 }, true],
  ['top level: second', { $or: [{ a: [1] }, { b: [2] }] }, { b: 2 }, true],
  ['top level: neither', { $or: [{ a: [1] }, { b: [2] }] }, { a: 2, b: 1 }, false],
  ['with other fields (and)', { t: ['X'], $or: [{ a: [1] }, { b: [2] }] }, { t: 'Y', a: 1 }, false],
  ['with other fields (both)', { t: ['X'], $or: [{ a: [1] }, { b: [2] }] }, { t: 'X', b: 2 }, true],
  [
    'nested inside an object',
    { c: { $or: [{ tier: ['gold'] }, { vip: [true] }] } },
    { c: { vip: true } },
    true,
  ],
  [
    'an alternative with several fields needs all',
    { $or: [{ a: [1], b: [1] }, { c: [1] }] },
    { a: 1, b: 2 },
    false,
  ],
  [
    '$or inside $or',
    { $or: [{ a: [1] }, { $or: [{ b: [1] }, { c: [{ numeric: ['>', 5] }] }] }] },
    { c: 6 },
    true,
  ],
  ['alternatives with operators', { $or: [{ a: [{ exists: false }] }, { a: [0] }] }, { a: 0 }, true],
]);

// Where our matcher used to part from event-ruler (the code behind EventBridge) and the EventBridge docs.
table('arrays nested in arrays are flattened', [
  ['an exact value inside a nested array', { n: [3] }, { n: [[1, 2], [3]] }, true],
  ['a value deeper still', { s: ['x'] }, { s: ['a', ['b', ['x']]] }, true],
  ['no listed value in the nested arrays', { n: [4] }, { n: [[1, 2], [3]] }, false],
  ['an operator inside a nested array', { s: [{ prefix: 'ab' }] }, { s: [['x'], ['abc']] }, true],
  ['nested empty arrays are a missing field', { s: [{ exists: false }] }, { s: [[], [[]]] }, true],
  [
    'objects inside nested arrays',
    { items: { sku: ['X'] } },
    { items: [[{ sku: 'Y' }], [{ sku: 'X' }]] },
    true,
  ],
]);

table('exists: false over an array', [
  [
    'fails when one element is a leaf beside objects',
    { a: [{ exists: false }] },
    { a: [{ b: 1 }, 'x'] },
    false,
  ],
  ['fails on a null element beside objects', { a: [{ exists: false }] }, { a: [{ b: 1 }, null] }, false],
  ['fails on [null]', { a: [{ exists: false }] }, { a: [null] }, false],
  ['holds on an array of objects only (no leaf)', { a: [{ exists: false }] }, { a: [{ b: 1 }] }, true],
  ['true holds on a null element beside objects', { a: [{ exists: true }] }, { a: [{ b: 1 }, null] }, true],
  ['with a value: the value still counts', { a: ['x', { exists: false }] }, { a: [{ b: 1 }, 'x'] }, true],
  ['with a value: another leaf fails both', { a: ['x', { exists: false }] }, { a: [{ b: 1 }, 'y'] }, false],
]);

const items = {
  items: [
    { sku: 'X', qty: 1 },
    { sku: 'Y', qty: 2 },
  ],
};
table('$or over an array of objects matches within one element', [
  [
    '$or at the top, field beside it',
    { items: { sku: ['X'] }, $or: [{ items: { qty: [2] } }, { items: { qty: [3] } }] },
    items,
    false,
  ],
  [
    '$or at the top, same element',
    { items: { sku: ['Y'] }, $or: [{ items: { qty: [2] } }, { items: { qty: [3] } }] },
    items,
    true,
  ],
  [
    '$or inside the array field, field beside it',
    { items: { sku: ['X'], $or: [{ qty: [2] }, { qty: [3] }] } },
    items,
    false,
  ],
  [
    'two $or at different levels, no one element has both',
    { $or: [{ items: { sku: ['X'] } }, { n: [1] }], items: { $or: [{ qty: [2] }, { qty: [3] }] } },
    items,
    false,
  ],
  [
    'two $or at different levels, one element has both',
    { $or: [{ items: { sku: ['Y'] } }, { n: [1] }], items: { $or: [{ qty: [2] }, { qty: [3] }] } },
    items,
    true,
  ],
  [
    '$or within nested arrays',
    { a: { b: { c: [1] } }, $or: [{ a: { b: { d: [2] } } }] },
    {
      a: [
        {
          b: [
            { c: 1, d: 1 },
            { c: 2, d: 2 },
          ],
        },
      ],
    },
    false,
  ],
  [
    '$or with $kafka inside an alternative still matches the event',
    { $or: [{ $kafka: { key: ['nope'] } }, { items: { sku: ['X'], qty: [1] } }] },
    items,
    true,
  ],
]);

table('anything-but with lists of prefix, suffix and wildcard', [
  [
    'prefix list: one excluded',
    { r: [{ 'anything-but': { prefix: ['us-', 'eu-'] } }] },
    { r: 'eu-west-1' },
    false,
  ],
  [
    'prefix list: none excluded',
    { r: [{ 'anything-but': { prefix: ['us-', 'eu-'] } }] },
    { r: 'ap-south-1' },
    true,
  ],
  [
    'suffix list: one excluded',
    { f: [{ 'anything-but': { suffix: ['.png', '.gif'] } }] },
    { f: 'a.gif' },
    false,
  ],
  [
    'suffix list: none excluded',
    { f: [{ 'anything-but': { suffix: ['.png', '.gif'] } }] },
    { f: 'a.txt' },
    true,
  ],
  [
    'wildcard list: one excluded',
    { p: [{ 'anything-but': { wildcard: ['*/lib/*', 'x*'] } }] },
    { p: 'xy' },
    false,
  ],
  [
    'wildcard list: none excluded',
    { p: [{ 'anything-but': { wildcard: ['*/lib/*', 'x*'] } }] },
    { p: 'a/b' },
    true,
  ],
]);

describe('anything-but lists in a rules file', () => {
  it.each(['prefix', 'suffix', 'wildcard'])('the schema accepts a list of %s values', (operator) => {
    const doc = `version: 1
rules:
  - name: a
    topics: [t]
    match: { s: [{ anything-but: { ${operator}: [ab, cd] } }] }
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: a@b.co }, text: x }
`;
    const rules = parseRules(doc, 'rules.yaml');
    expect(rules.match('t', { s: 'zz' }).map((r) => r.name)).toEqual(['a']);
    expect(rules.match('t', { s: 'ab' })).toEqual([]);
  });
});

describe('$or multiplied out', () => {
  it('refuses a pattern whose $ors multiply out past the limit, naming where', () => {
    const or = { $or: [{ a: [1] }, { b: [1] }, { c: [1] }, { d: [1] }] };
    const pattern = { w: or, x: or, y: or, z: or, v: or } as Pattern;
    expect(() => compilePattern(pattern)).toThrow(PatternDefinitionError);
    expect(() => compilePattern(pattern)).toThrow('more than 256 alternatives');
  });

  it('names the place of a mistake inside an $or alternative', () => {
    try {
      compilePattern({ $or: [{ a: [1] }, { b: { c: [{ numeric: ['>', 5, '<', 1] }] } }] });
      expect.unreachable();
    } catch (error) {
      expect((error as PatternDefinitionError).segments).toEqual(['$or', 1, 'b', 'c', 0, 'numeric']);
    }
  });
});

table('cidr', [
  ['an IPv4 address in the block', { ip: [{ cidr: '10.0.0.0/24' }] }, { ip: '10.0.0.42' }, true],
  ['an IPv4 address outside', { ip: [{ cidr: '10.0.0.0/24' }] }, { ip: '10.0.1.1' }, false],
  ['an IPv6 address in the block', { ip: [{ cidr: '2001:db8::/32' }] }, { ip: '2001:db8::1' }, true],
  ['an IPv6 address for an IPv4 block', { ip: [{ cidr: '10.0.0.0/8' }] }, { ip: '2001:db8::1' }, false],
  ['not an address', { ip: [{ cidr: '10.0.0.0/8' }] }, { ip: '10.0.0.x' }, false],
  ['a single address', { ip: [{ cidr: '192.168.1.1' }] }, { ip: '192.168.1.1' }, true],
]);

describe('$kafka: the record key and headers', () => {
  const kafka: KafkaMeta = { key: 'order-1', headers: { source: 'shop', tag: ['a', 'b'] } };
  const cases: [string, Pattern, KafkaMeta | undefined, boolean][] = [
    ['key exact', { $kafka: { key: ['order-1'] } }, kafka, true],
    ['key prefix', { $kafka: { key: [{ prefix: 'order-' }] } }, kafka, true],
    ['key other', { $kafka: { key: ['order-2'] } }, kafka, false],
    ['no key: exists false', { $kafka: { key: [{ exists: false }] } }, { headers: {} }, true],
    ['header value', { $kafka: { headers: { source: ['shop'] } } }, kafka, true],
    ['repeated header: any value', { $kafka: { headers: { tag: ['b'] } } }, kafka, true],
    ['missing header', { $kafka: { headers: { other: ['x'] } } }, kafka, false],
    ['missing header: exists false', { $kafka: { headers: { other: [{ exists: false }] } } }, kafka, true],
    ['no record metadata at all', { $kafka: { key: ['order-1'] } }, undefined, false],
    ['in $or', { $or: [{ type: ['X'] }, { $kafka: { key: ['order-1'] } }] }, kafka, true],
  ];
  it.each(cases)('%s', (_name, pattern, meta, expected) => {
    expect(compilePattern(pattern)({ type: 'Y' }, meta)).toBe(expected);
  });

  it('an event field named $kafka is not the record', () => {
    expect(compilePattern({ $kafka: { key: ['k'] } })({ $kafka: { key: 'k' } }, { headers: {} })).toBe(false);
  });
});

describe('mistakes the schema cannot see', () => {
  const cases: [string, Pattern, string][] = [
    ['consecutive stars', { p: [{ wildcard: 'a**b' }] }, 'consecutive'],
    ['a dangling backslash', { p: [{ wildcard: 'a\\b' }] }, 'followed by'],
    ['an unknown comparison', { n: [{ numeric: ['!=', 1] }] }, 'must be one of'],
    ['a bound that is no number', { n: [{ numeric: ['>', '1'] }] }, 'must be a number'],
    ['an empty range', { n: [{ numeric: ['>', 5, '<', 1] }] }, 'below the upper'],
    ['two lower bounds', { n: [{ numeric: ['>', 1, '>=', 2] }] }, 'at most one'],
    ['= with a bound', { n: [{ numeric: ['=', 1, '<', 2] }] }, 'cannot be combined'],
    ['a cidr that is no block', { ip: [{ cidr: '10.0.0.0/33' }] }, 'IPv4 or IPv6'],
    ['anything-but mixing strings and numbers', { s: [{ 'anything-but': ['a', 1] }] }, 'only strings'],
  ];
  it.each(cases)('%s', (_name, pattern, message) => {
    expect(() => compilePattern(pattern)).toThrow(PatternDefinitionError);
    expect(() => compilePattern(pattern)).toThrow(message);
  });
});
