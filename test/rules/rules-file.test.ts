import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RulesFileError, codeFrame, formatProblem, parseRules } from '../../src/rules/rules-file.js';

const good = `version: 1
rules:
  - name: order-shipped-email
    topics: [shop.orders]
    match: { type: [OrderShipped] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example, name: Shop }
        to: { email: "{{ customer.email }}", name: "{{ customer.name }}" }
        subject: "Order {{ orderId }} has shipped"
        text: "Hello {{ customer.name }}"
`;

function problems(text: string) {
  try {
    parseRules(text, 'rules.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(RulesFileError);
    return (error as RulesFileError).problems;
  }
  throw new Error('expected the rules file to be refused');
}

describe('parseRules', () => {
  it('compiles a valid file and indexes rules by topic', () => {
    const rules = parseRules(good, 'rules.yaml');
    expect(rules.topics).toEqual(['shop.orders']);
    expect(rules.match('shop.orders', { type: 'OrderShipped' }).map((r) => r.name)).toEqual([
      'order-shipped-email',
    ]);
    expect(rules.match('shop.orders', { type: 'Other' })).toEqual([]);
    expect(rules.match('other.topic', { type: 'OrderShipped' })).toEqual([]);
  });

  it('accepts JSON', () => {
    const json = JSON.stringify({
      version: 1,
      rules: [
        {
          name: 'r',
          topics: ['t'],
          action: { agentlessEmail: { from: { email: 'a@b.co' }, to: { email: '{{ e }}' }, text: 'x' } },
        },
      ],
    });
    expect(parseRules(json, 'rules.json').rules).toHaveLength(1);
  });

  // JSON is read without the YAML parser; its mistakes must still be found, and located, as in YAML.
  it('locates mistakes in a JSON file, one rule per line', () => {
    const rule = (name: string, extra = '') =>
      `{"name": "${name}", "topics": ["t"]${extra}, "action": {"agentlessEmail": {"from": {"email": "a@b.co"}, "to": {"email": "{{ e }}"}, "text": "x"}}}`;
    const json = [
      '{"version": 1, "rules": [',
      `  ${rule('a')},`,
      `  ${rule('b', ', "match": {"type": "X"}')},`,
      `  ${rule('a', ', "enabeld": false')}`,
      ']}',
    ].join('\n');
    expect(problems(json).map((p) => [p.line, p.column, p.message])).toEqual([
      [3, 52, 'must be a list of values (the event matches any of them) or a nested pattern object'],
      [4, 34, 'unknown key "enabeld"; did you mean "enabled"?'],
    ]);
    const unique = json.replace('"enabeld": false', '"enabled": false');
    expect(problems(unique).map((p) => [p.line, p.column, p.message])).toEqual([
      [3, 52, 'must be a list of values (the event matches any of them) or a nested pattern object'],
      [4, 12, 'rule name "a" is used twice'],
    ]);
  });

  it('refuses a key given twice in a JSON object, which JSON.parse alone would let pass', () => {
    const json = `{"version": 1, "rules": [{"name": "r", "topics": ["t"], "name": "s",
      "action": {"agentlessEmail": {"from": {"email": "a@b.co"}, "to": {"email": "{{ e }}"}, "text": "x"}}}]}`;
    const found = problems(json);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ line: 1, message: expect.stringMatching(/unique/i) as unknown });
    // The same key in two different objects is not a duplicate, nor is a key-like string value.
    const fine = `{"version": 1, "rules": [{"name": "r", "topics": ["t"], "match": {"name": ["a\\":"]},
      "action": {"agentlessEmail": {"from": {"email": "a@b.co", "name": "x"}, "to": {"email": "{{ e }}"}, "text": "x"}}}]}`;
    expect(parseRules(fine, 'rules.json').rules[0]?.name).toBe('r');
  });

  it('reports every mistake with its line and column', () => {
    const bad = `version: 1
rules:
  - name: order-shipped-email
    topics: [shop.orders]
    match: { type: OrderShipped }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        sbject: "Order {{ orderId }}"
        text: "Hello {{ customer.name "
`;
    const found = problems(bad);
    expect(found.map((p) => [p.line, p.column, p.message])).toEqual([
      [5, 20, 'must be a list of values (the event matches any of them) or a nested pattern object'],
      [10, 9, 'unknown key "sbject"; did you mean "subject"?'],
    ]);
    // The template error is reported too once the schema errors are fixed.
    const templateProblems = problems(
      bad.replace('type: OrderShipped', 'type: [OrderShipped]').replace('sbject', 'subject'),
    );
    expect(templateProblems).toHaveLength(1);
    expect(templateProblems[0]).toMatchObject({
      line: 11,
      column: 15,
      path: 'rules[0].action.agentlessEmail.text',
    });
    expect(templateProblems[0]?.message).toContain('invalid template');
  });

  it('reports YAML syntax errors with their position', () => {
    const [problem] = problems('version: 1\nrules:\n  - name: [unclosed\n');
    expect(problem?.line).toBeGreaterThanOrEqual(3);
  });

  it('reports a wrong version, a missing body and a duplicate name in one pass', () => {
    const doc = `version: 2
rules:
  - name: a
    topics: [t]
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: a@b.co } }
  - name: a
    topics: [t]
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: a@b.co }, text: x }
`;
    const messages = problems(doc).map((p) => `${p.line}: ${p.message}`);
    expect(messages).toEqual([
      '1: must be 1',
      '6: needs a "text" or an "html" body',
      '7: rule name "a" is used twice',
    ]);
  });

  it('reports pattern mistakes with friendly messages at their position', () => {
    const doc = `version: 1
rules:
  - name: a
    topics: [t]
    match:
      a: [{ prefix: x, suffix: y }]
      b: [{}]
      $or:
        - c: [{ anything-but: { prefix: 1 } }]
      $kafka: { key: x }
      d: { $and: [1] }
    action:
      agentlessMessage: { messengerType: fax, from: x, to: y, text: z }
`;
    const found = problems(doc).map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
    expect(found).toEqual([
      '6:11 rules[0].match.a[0]: must hold exactly one operator (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)',
      '7:11 rules[0].match.b[0]: must hold exactly one operator (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)',
      '9:41 rules[0].match.$or[0].c[0].anything-but.prefix: must be string',
      '10:22 rules[0].match.$kafka.key: must be array',
      '11:12 rules[0].match.d.$and: unknown key "$and" (of the keys starting with "$", patterns know $or and, at the top, $kafka)',
      '13:42 rules[0].action.agentlessMessage.messengerType: must be one of "sms", "whatsapp", "open" (found "fax")',
    ]);
  });

  it('checks what only the compiler sees: WhatsApp without a template, text and template together', () => {
    const doc = `version: 1
rules:
  - name: a
    topics: [t]
    action:
      agentlessMessage: { messengerType: whatsapp, from: x, to: y, text: z }
  - name: b
    topics: [t]
    action:
      agentlessMessage: { messengerType: sms, from: x, to: y, text: z, template: { responseId: r } }
`;
    expect(problems(doc).map((p) => `${p.line}: ${p.message}`)).toEqual([
      '6: WhatsApp messages need a "template" (a messaging template)',
      '10: needs either a "text" or a "template", not both',
    ]);
  });

  it('compiles a disabled rule but does not use it', () => {
    const rules = parseRules(good.replace('    match:', '    enabled: false\n    match:'), 'rules.yaml');
    expect(rules.rules).toHaveLength(0);
    expect(() =>
      parseRules(good.replace('    match:', '    enabled: nope\n    match:'), 'rules.yaml'),
    ).toThrow(RulesFileError);
  });
});

/** The one-line messages for `text` as `geb rules check` prints them. */
function formatted(text: string): string[] {
  return problems(text).map((p) => formatProblem('rules.yaml', p));
}

describe("issue 18's authoring mistakes: each message names file:line:col, the rule and the fix", () => {
  it('an indentation slip is one error at the slipped line and column, in its rule, not four at column 1', () => {
    // `subject` indented one space short of its neighbours.
    const slipped = good.replace('        subject:', '       subject:');
    expect(formatted(slipped)).toEqual([
      'rules.yaml:10:8: indented 7 spaces, which matches no enclosing level (0, 2, 4, 6, or 8): keys of one mapping must start in the same column (rule "order-shipped-email")',
    ]);
    // A key dedented to its parent's level: the line after it is the one the lines before cannot explain.
    const dedented = good.replace('        subject:', '      subject:');
    expect(formatted(dedented)).toEqual([
      'rules.yaml:11:9: indented 8 spaces, deeper than line 10 (6 spaces), which opens no block: align it with the line before, or end that line with ":" (rule "order-shipped-email")',
    ]);
    expect(formatted(good.replace('        subject:', '\tsubject:'))).toEqual([
      'rules.yaml:10:1: a tab in the indentation: YAML indents with spaces only (rule "order-shipped-email")',
    ]);
  });

  it("reports the parser's own error where the indentation is not the cause", () => {
    // Plain text continued on a deeper line is valid YAML; the slip is the unclosed quote after it.
    const text = good
      .replace('subject: "Order {{ orderId }} has shipped"', 'subject: Order\n          shipped')
      .replace('text: "Hello {{ customer.name }}"', 'text: "Hello {{ customer.name }}');
    const found = formatted(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^rules\.yaml:12:\d+: Missing closing "quote \(rule "order-shipped-email"\)$/);
  });

  it('prints a code frame: the offending line and a caret under the column', () => {
    const slipped = good.replace('        subject:', '       subject:');
    const [problem] = problems(slipped);
    expect(codeFrame(slipped, problem?.line ?? 0, problem?.column ?? 0).split('\n')).toEqual([
      '   8 |         from: { email: orders@shop.example, name: Shop }',
      '   9 |         to: { email: "{{ customer.email }}", name: "{{ customer.name }}" }',
      '> 10 |        subject: "Order {{ orderId }} has shipped"',
      '     |        ^',
      '  11 |         text: "Hello {{ customer.name }}"',
    ]);
  });

  it('an unknown key gets "did you mean" the key allowed there', () => {
    expect(formatted(good.replace('subject:', 'sbject:'))).toEqual([
      'rules.yaml:10:9: rules[0].action.agentlessEmail.sbject: unknown key "sbject"; did you mean "subject"? (rule "order-shipped-email")',
    ]);
  });

  it('a mistaken operator name is mapped to the EventBridge operator (startsWith → prefix), a misspelt one by edit distance', () => {
    const text = good.replace('type: [OrderShipped]', 'type: [{ startsWith: Order }], id: [{ sufix: "-1" }]');
    const operators =
      '(the operators are prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)';
    expect(formatted(text)).toEqual([
      `rules.yaml:5:23: rules[0].match.type[0].startsWith: unknown key "startsWith"; did you mean "prefix"? ${operators} (rule "order-shipped-email")`,
      `rules.yaml:5:52: rules[0].match.id[0].sufix: unknown key "sufix"; did you mean "suffix"? ${operators} (rule "order-shipped-email")`,
    ]);
  });

  it('an enum error lists the allowed values and the nearest', () => {
    const text = `version: 1
rules:
  - name: sms-reminder
    topics: [t]
    action:
      agentlessMessage: { messengerType: SMS, from: "+15550000000", to: "{{ phone }}", text: hi }
`;
    expect(formatted(text)).toEqual([
      'rules.yaml:6:42: rules[0].action.agentlessMessage.messengerType: must be one of "sms", "whatsapp", "open"; did you mean "sms"? (found "SMS") (rule "sms-reminder")',
    ]);
  });

  it('a missing required key names the misspelt key that is there', () => {
    const text = good.replace('        to: {', '        too: {');
    expect(formatted(text)).toContain(
      'rules.yaml:8:9: rules[0].action.agentlessEmail: missing required key "to" ("too" is there: a misspelling?) (rule "order-shipped-email")',
    );
  });
});

describe('schemas/rules.schema.json', () => {
  it('describes every property, so that editor hovers are never empty', () => {
    const schema = JSON.parse(
      readFileSync(new URL('../../schemas/rules.schema.json', import.meta.url), 'utf8'),
    ) as unknown;
    const undescribed: string[] = [];
    let properties = 0;
    const walk = (node: unknown, path: string): void => {
      if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${path}/${i}`));
      if (typeof node !== 'object' || node === null) return;
      const props = (node as { properties?: unknown }).properties;
      if (typeof props === 'object' && props !== null) {
        for (const [key, value] of Object.entries(props)) {
          properties += 1;
          const description = (value as { description?: unknown }).description;
          if (typeof description !== 'string' || description.trim() === '')
            undescribed.push(`${path}/properties/${key}`);
        }
      }
      for (const [key, value] of Object.entries(node)) walk(value, `${path}/${key}`);
    };
    walk(schema, '#');
    expect(properties).toBeGreaterThanOrEqual(73);
    expect(undescribed).toEqual([]);
  });
});
