import { describe, expect, it } from 'vitest';
import { isBridgeError } from '../../src/errors.js';
import { ruleIdempotencyKey } from '../../src/pipeline.js';
import { RulesFileError, parseRules } from '../../src/rules/rules-file.js';
import { templateScope } from '../../src/rules/template.js';

const withKey = (key: string) => `version: 1
rules:
  - name: receipt
    topics: [shop.orders]
    idempotencyKey: ${JSON.stringify(key)}
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        text: "Thanks"
`;

function refusal(text: string): RulesFileError {
  try {
    parseRules(text, 'rules.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(RulesFileError);
    return error as RulesFileError;
  }
  throw new Error('expected the rules file to be refused');
}

describe('idempotencyKey', () => {
  it('renders the rule template over the event', () => {
    const [rule] = parseRules(withKey('order-{{ orderId }}'), 'rules.yaml').rules;
    expect(ruleIdempotencyKey(rule!, templateScope({ orderId: 'A-1' }))).toBe('order-A-1');
  });

  it('is undefined without a template, so the default (the coordinates) applies', () => {
    const text = withKey('x').replace(/ {4}idempotencyKey: .*\n/, '');
    const [rule] = parseRules(text, 'rules.yaml').rules;
    expect(ruleIdempotencyKey(rule!, {})).toBeUndefined();
  });

  it('fails the delivery with TEMPLATE_VARIABLE_MISSING when the event lacks a field, or renders empty', () => {
    const [rule] = parseRules(withKey('{{ orderId }}'), 'rules.yaml').rules;
    for (const event of [{}, { orderId: '' }]) {
      let caught: unknown;
      try {
        ruleIdempotencyKey(rule!, templateScope(event));
      } catch (error) {
        caught = error;
      }
      expect(isBridgeError(caught) && caught.code).toBe('TEMPLATE_VARIABLE_MISSING');
    }
  });

  it('reports a template syntax error at its line', () => {
    const [problem] = refusal(withKey('{{ orderId ')).problems;
    expect(problem).toMatchObject({ path: 'rules[0].idempotencyKey', line: 5 });
  });

  it('refuses an empty key', () => {
    expect(refusal(withKey('')).problems[0]?.path).toBe('rules[0].idempotencyKey');
  });
});
