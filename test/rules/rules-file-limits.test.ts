import { describe, expect, it } from 'vitest';
import {
  MAX_PATTERN_DEPTH,
  PatternDefinitionError,
  compilePattern,
  type Pattern,
} from '../../src/rules/pattern.js';
import { RULES_FILE_LIMITS, RulesFileError, parseRules } from '../../src/rules/rules-file.js';

function refusal(text: string, source = 'rules.yaml'): RulesFileError {
  try {
    parseRules(text, source, {});
  } catch (error) {
    expect(error).toBeInstanceOf(RulesFileError);
    return error as RulesFileError;
  }
  throw new Error('expected the rules file to be refused');
}

const rule = (match: string) => `version: 1
rules:
  - name: r
    topics: [t]
    match: ${match}
    action:
      agentlessEmail:
        from: { email: a@shop.example }
        to: { email: "{{ email }}" }
        text: "hi"
`;

/** A pattern nested `levels` fields deep: { a: { a: { … { a: ["x"] } } } } as flow YAML on one line. */
const nestedPattern = (levels: number) => `${'{ a: '.repeat(levels)}[x]${' }'.repeat(levels)}`;

describe('a rules file is bounded in depth and aliases, and refused with a location', () => {
  it('refuses a YAML alias bomb with the position of the first alias', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
version: 1
rules: [*h]
`;
    const error = refusal(bomb);
    expect(error.code).toBe('RULES_INVALID');
    expect(error.problems).toEqual([expect.objectContaining({ line: 2, column: 8 })]);
    expect(error.problems[0]?.message).toContain('alias bomb');
  });

  it('still accepts a few aliases that share an action', () => {
    const text = `version: 1
rules:
  - name: one
    topics: [t]
    action: &email
      agentlessEmail:
        from: { email: a@shop.example }
        to: { email: "{{ email }}" }
        text: "hi"
  - name: two
    topics: [t]
    action: *email
`;
    expect(parseRules(text, 'rules.yaml', {}).rules).toHaveLength(2);
  });

  it.each([100, 10_000])(
    'refuses a YAML pattern nested %i deep with a location, not a stack overflow',
    (levels) => {
      const error = refusal(rule(nestedPattern(levels)));
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]?.line).toBe(5);
      expect(error.problems[0]?.message).toMatch(/nested (more than 64 levels deep|too deeply to read)/);
    },
  );

  it('refuses a JSON file nested 10,000 deep with the line and column of the bracket that goes too deep', () => {
    const json = `{\n  "version": 1,\n  "rules": ${'['.repeat(10_000)}${']'.repeat(10_000)}\n}\n`;
    const error = refusal(json, 'rules.json');
    expect(error.problems).toEqual([
      expect.objectContaining({ line: 3, column: 12 + RULES_FILE_LIMITS.maxDepth - 1 }),
    ]);
    expect(error.problems[0]?.message).toBe(
      `nested more than ${RULES_FILE_LIMITS.maxDepth} levels deep: refused`,
    );
  });

  it('refuses YAML block style nested 10,000 deep', () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `${' '.repeat(i + 4)}k${i}:`);
    const error = refusal(`version: 1\nrules:\n  - match:\n${lines.join('\n')} [x]\n`);
    expect(error.problems[0]?.line).toBeGreaterThan(0);
    expect(error.problems[0]?.message).toMatch(/nested/);
  });

  it('accepts a pattern nested as deep as real ones go', () => {
    expect(parseRules(rule(nestedPattern(20)), 'rules.yaml', {}).rules).toHaveLength(1);
  });

  it('compilePattern alone refuses a pattern nested 10,000 deep with a path, not a stack overflow', () => {
    let pattern: Pattern = { a: ['x'] };
    for (let i = 0; i < 10_000; i++) pattern = { a: pattern };
    expect(() => compilePattern(pattern)).toThrow(PatternDefinitionError);
    let $or: Pattern = { a: ['x'] };
    for (let i = 0; i < 10_000; i++) $or = { $or: [$or] };
    try {
      compilePattern($or);
    } catch (error) {
      expect(error).toBeInstanceOf(PatternDefinitionError);
      expect((error as PatternDefinitionError).segments).toHaveLength(MAX_PATTERN_DEPTH);
    }
  });
});
