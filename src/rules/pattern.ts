/**
 * EventBridge-style event patterns. A pattern is an object whose leaves are arrays of allowed values; nested objects
 * descend into the event. A leaf matches when the event's value at that path equals one of the listed values, or,
 * when the event holds an array there, when any element does. Types are strict: the number 5 never equals "5".
 */
export type PatternValue = string | number | boolean | null;
export interface Pattern {
  readonly [field: string]: readonly PatternValue[] | Pattern;
}

export type Matcher = (event: unknown) => boolean;

export function compilePattern(pattern: Pattern | undefined): Matcher {
  if (!pattern || Object.keys(pattern).length === 0) return () => true;
  const checks = Object.entries(pattern).map(([field, expected]): Matcher => {
    if (Array.isArray(expected)) {
      const allowed = expected as readonly PatternValue[];
      return (event) => leafMatches(fieldOf(event, field), allowed);
    }
    const nested = compilePattern(expected as Pattern);
    return (event) => {
      const value = fieldOf(event, field);
      return Array.isArray(value) ? value.some(nested) : isObject(value) && nested(value);
    };
  });
  return (event) => checks.every((check) => check(event));
}

function leafMatches(value: unknown, allowed: readonly PatternValue[]): boolean {
  if (value === undefined) return false;
  if (Array.isArray(value)) return value.some((element) => allowed.some((a) => a === element));
  return allowed.some((a) => a === value);
}

function fieldOf(event: unknown, field: string): unknown {
  return isObject(event) && Object.hasOwn(event, field) ? event[field] : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
