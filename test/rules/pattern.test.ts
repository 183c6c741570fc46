import { describe, expect, it } from 'vitest';
import { compilePattern, type Pattern } from '../../src/rules/pattern.js';

describe('compilePattern (exact values)', () => {
  const cases: [string, Pattern | undefined, unknown, boolean][] = [
    ['no pattern matches everything', undefined, { any: 1 }, true],
    ['one of the listed values', { type: ['A', 'B'] }, { type: 'B' }, true],
    ['a value not listed', { type: ['A'] }, { type: 'C' }, false],
    ['a missing field', { type: ['A'] }, {}, false],
    ['a number never equals a string', { n: [5] }, { n: '5' }, false],
    ['a string never equals a number', { n: ['5'] }, { n: 5 }, false],
    ['numbers compare by value', { n: [5] }, { n: 5.0 }, true],
    ['null matches null', { x: [null] }, { x: null }, true],
    ['null does not match a missing field', { x: [null] }, {}, false],
    ['empty string matches empty string', { x: [''] }, { x: '' }, true],
    ['booleans', { ok: [true] }, { ok: true }, true],
    [
      'an array in the event matches when any element does',
      { tags: ['vip'] },
      { tags: ['new', 'vip'] },
      true,
    ],
    ['an array in the event with no listed element', { tags: ['vip'] }, { tags: ['new'] }, false],
    ['nested objects', { customer: { tier: ['gold'] } }, { customer: { tier: 'gold' } }, true],
    ['nested field missing', { customer: { tier: ['gold'] } }, { customer: {} }, false],
    ['nested pattern on a scalar', { customer: { tier: ['gold'] } }, { customer: 'gold' }, false],
    [
      'nested pattern over an array of objects',
      { items: { sku: ['X'] } },
      { items: [{ sku: 'Y' }, { sku: 'X' }] },
      true,
    ],
    ['all fields must match', { a: ['1'], b: ['2'] }, { a: '1', b: '3' }, false],
    ['inherited properties are not fields', { toString: ['x'] }, {}, false],
    ['a non-object event', { type: ['A'] }, 'A', false],
  ];
  it.each(cases)('%s', (_name, pattern, event, expected) => {
    expect(compilePattern(pattern)(event)).toBe(expected);
  });
});
