import { describe, expect, it } from 'vitest';
import { RulesFileError, parseRules } from '../../src/rules/rules-file.js';

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
      [4, 34, 'unknown key "enabeld"'],
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
      [10, 9, 'unknown key "sbject"'],
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
      '13:42 rules[0].action.agentlessMessage.messengerType: must be equal to one of the allowed values',
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
