import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import {
  TemplateSyntaxError,
  compileTemplate,
  templateScope,
  type TemplateMode,
} from '../../src/rules/template.js';

function render(source: string, event: unknown, mode: TemplateMode = 'text'): string {
  return compileTemplate(source, 'field', mode).render(templateScope(event));
}

function failure(source: string, event: unknown): BridgeError {
  try {
    render(source, event);
  } catch (error) {
    expect(error).toBeInstanceOf(BridgeError);
    return error as BridgeError;
  }
  throw new Error('expected rendering to fail');
}

describe('template filters', () => {
  const cases: [string, string, unknown, string][] = [
    [
      'date in a time zone',
      '{{ at | date: "%Y-%m-%d %H:%M", "Europe/Paris" }}',
      { at: '2026-11-24T15:00:00Z' },
      '2026-11-24 16:00',
    ],
    [
      'date in another zone',
      '{{ at | date: "%d %B %Y %H:%M", "America/New_York" }}',
      { at: '2026-07-04T15:00:00Z' },
      '04 July 2026 11:00',
    ],
    ['number with a locale', '{{ n | number: "de-DE" }}', { n: 1234567.891 }, '1.234.567,891'],
    ['number with decimals', '{{ n | number: "en-US", 2 }}', { n: 1234.5 }, '1,234.50'],
    ['number from a numeric string', '{{ n | number: "en-US", 0 }}', { n: '42.4' }, '42'],
    ['currency with a locale', '{{ n | currency: "EUR", "fr-FR" }}', { n: 1234.5 }, '1\u202f234,50\u00a0€'],
    ['currency, US', '{{ n | currency: "USD", "en-US" }}', { n: 9.5 }, '$9.50'],
    ['default for a missing field', '{{ nick | default: "friend" }}', {}, 'friend'],
    ['default for a null field', '{{ nick | default: "friend" }}', { nick: null }, 'friend'],
    ['default for a missing nested field', '{{ c.nick | default: "friend" }}', { c: {} }, 'friend'],
    ['default keeps a present value', '{{ nick | default: "friend" }}', { nick: 'Ada' }, 'Ada'],
    ['default then upcase', '{{ nick | default: "friend" | upcase }}', {}, 'FRIEND'],
    ['upcase', '{{ s | upcase }}', { s: 'abc' }, 'ABC'],
    ['downcase', '{{ s | downcase }}', { s: 'ABC' }, 'abc'],
    ['if on a missing field is false', '{% if vip %}VIP{% else %}regular{% endif %}', {}, 'regular'],
  ];
  it.each(cases)('%s', (_name, source, event, expected) => {
    expect(render(source, event)).toBe(expected);
  });
});

describe('strictness', () => {
  it('a plain missing variable is still an error', () => {
    expect(failure('Hi {{ name }}', {}).code).toBe('TEMPLATE_VARIABLE_MISSING');
  });
  it('a filter after another filter does not make a missing variable lenient', () => {
    expect(failure('{{ name | upcase | default: "x" }}', {}).code).toBe('TEMPLATE_VARIABLE_MISSING');
  });
  it('a number filter given text fails the event without quoting the value', () => {
    const error = failure('{{ n | number: "en-US" }}', { n: 'secret-ish' });
    expect(error.code).toBe('TEMPLATE_RENDER_FAILED');
    expect(error.message).not.toContain('secret-ish');
  });
  it('an unknown filter is refused when the template is compiled', () => {
    expect(() => compileTemplate('{{ n | money }}', 'field', 'text')).toThrow(/invalid template/);
  });
  it('escapes in html, even through filters and defaults', () => {
    expect(render('<p>{{ s | default: "<i>" }}</p>', {}, 'html')).toBe('<p>&lt;i&gt;</p>');
    expect(render('<p>{{ s | upcase }}</p>', { s: '<b>' }, 'html')).toBe('<p>&lt;B&gt;</p>');
  });
  it('strips CR/LF in headers', () => {
    expect(render('{{ s }}', { s: 'a\r\nb' }, 'header')).toBe('a b');
  });
  it('renders text with no tag as written, with the same rules as a template', () => {
    // Such text skips the Liquid engine; what the engine would make of it must not change.
    expect(render(' Subject\r\n line ', {}, 'header')).toBe('Subject  line');
    expect(render('<p>a & b</p>\n', {}, 'html')).toBe('<p>a & b</p>\n');
    expect(render('{ x } {', {}, 'text')).toBe('{ x } {');
    for (const source of [' Subject\r\n line ', '<p>a & b</p>\n', '{ x } {', 'a }} b']) {
      for (const mode of ['header', 'html', 'text'] as const) {
        const throughLiquid = render(`{{ empty }}${source}`, { empty: '' }, mode);
        expect(render(source, {}, mode)).toBe(throughLiquid);
      }
    }
  });
});

describe('bounded work per render', () => {
  it('a range from the event (n = 1e9) fails fast with TEMPLATE_LIMIT_EXCEEDED, a dead-letter code', () => {
    const error = failure('{% for i in (1..n) %}x{% endfor %}', { n: 1e9 });
    expect(error.code).toBe('TEMPLATE_LIMIT_EXCEEDED');
    expect(error.disposition).toBe('dead-letter');
    expect(error.retryable).toBe(false);
  });

  it('nested loops that would run for minutes stop at the time limit', () => {
    const source =
      '{% for i in (1..n) %}{% for j in (1..n) %}{% for k in (1..n) %}x{% endfor %}{% endfor %}{% endfor %}';
    expect(failure(source, { n: 1000 }).code).toBe('TEMPLATE_LIMIT_EXCEEDED');
  });

  it('leaves normal loops alone', () => {
    expect(render('{% for i in (1..n) %}{{ i }}{% endfor %}', { n: 1000 })).toHaveLength(2893);
  });
});

describe("Liquid's file tags", () => {
  it.each([
    '{% include "x" %}',
    '{% render path %}',
    '{% layout "base" %}body',
    "{% include '/etc/passwd' %}",
  ])('%s is refused when the template is compiled, with its position', (source) => {
    let error: unknown;
    try {
      compileTemplate(source, 'field', 'text');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TemplateSyntaxError);
    expect((error as TemplateSyntaxError).message).toMatch(
      /tag is not available: Liquid's file tags are off/,
    );
    expect((error as TemplateSyntaxError).line).toBe(1);
  });
});
