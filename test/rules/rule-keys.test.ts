import { describe, expect, it } from 'vitest';
import { isBridgeError } from '../../src/errors.js';
import { ruleIdempotencyKey, ruleOrderingKey } from '../../src/rules/rule-keys.js';
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

function refusal(text: string, env: NodeJS.ProcessEnv = {}): RulesFileError {
  try {
    parseRules(text, 'rules.yaml', env);
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

const withOrderingKey = (key: string) =>
  withKey('x').replace(/idempotencyKey: .*/, `orderingKey: ${JSON.stringify(key)}`);

describe('orderingKey', () => {
  it('renders the rule template over the event, whatever the Kafka key', () => {
    const [rule] = parseRules(withOrderingKey('{{ customer.id }}'), 'rules.yaml').rules;
    expect(ruleOrderingKey(rule!, templateScope({ customer: { id: 'C-7' } }), 'order-1')).toBe('C-7');
  });

  it('is the Kafka key without a template, and nothing for a record without a key', () => {
    const text = withKey('x').replace(/ {4}idempotencyKey: .*\n/, '');
    const [rule] = parseRules(text, 'rules.yaml').rules;
    expect(ruleOrderingKey(rule!, {}, 'order-1')).toBe('order-1');
    expect(ruleOrderingKey(rule!, {}, undefined)).toBeUndefined();
  });

  it('fails the delivery with TEMPLATE_VARIABLE_MISSING when the event lacks a field, or renders empty', () => {
    const [rule] = parseRules(withOrderingKey('{{ customer.id }}'), 'rules.yaml').rules;
    for (const event of [{}, { customer: { id: '' } }]) {
      let caught: unknown;
      try {
        ruleOrderingKey(rule!, templateScope(event), 'k');
      } catch (error) {
        caught = error;
      }
      expect(isBridgeError(caught) && caught.code).toBe('TEMPLATE_VARIABLE_MISSING');
    }
  });

  it('reports a template syntax error at its line, and refuses an empty key', () => {
    expect(refusal(withOrderingKey('{{ customer.id ')).problems[0]).toMatchObject({
      path: 'rules[0].orderingKey',
      line: 5,
    });
    expect(refusal(withOrderingKey('')).problems[0]?.path).toBe('rules[0].orderingKey');
  });
});

const withConnections = (connections: string, ruleConnection = 'eu') => `version: 1
connections:
${connections}
rules:
  - name: receipt
    topics: [shop.orders]
    connection: ${ruleConnection}
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        text: "Thanks"
`;

describe('connections', () => {
  const env = { GEB_RULES_EU_ID: 'eu-client', GEB_RULES_EU_SECRET: 's3cret-value' };

  it('resolves ${NAME} from the environment, a region to its URLs, and hands the rule its connection', () => {
    const text = withConnections(`  eu:
    region: mypurecloud.ie
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${GEB_RULES_EU_SECRET}"`);
    const rules = parseRules(text, 'rules.yaml', env);
    const connection = rules.rules[0]?.connection;
    expect(connection).toMatchObject({
      name: 'eu',
      apiBaseUrl: 'https://api.mypurecloud.ie',
      tokenUrl: 'https://login.mypurecloud.ie/oauth/token',
      clientId: 'eu-client',
    });
    expect(connection?.clientSecret.reveal()).toBe('s3cret-value');
    // The secret is held in a Secret: it does not leak through JSON or string conversion.
    expect(JSON.stringify(rules.connections.get('eu'))).not.toContain('s3cret-value');
  });

  it('accepts apiUrl and loginUrl instead of a region, and a literal client id', () => {
    const text = withConnections(`  eu:
    apiUrl: http://127.0.0.1:9/
    loginUrl: http://127.0.0.1:9
    clientId: literal-id
    clientSecret: "\${GEB_RULES_EU_SECRET}"`);
    const allowing = { ...env, GENESYS_ALLOWED_HOSTS: '127.0.0.1:9' };
    expect(parseRules(text, 'rules.yaml', allowing).rules[0]?.connection).toMatchObject({
      apiBaseUrl: 'http://127.0.0.1:9',
      tokenUrl: 'http://127.0.0.1:9/oauth/token',
      clientId: 'literal-id',
    });
  });

  it('names a missing environment variable at its line and column', () => {
    const text = withConnections(`  eu:
    region: mypurecloud.ie
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${GEB_RULES_MISSING_SECRET}"`);
    const { problems, message } = refusal(text, env);
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'connections.eu.clientSecret',
        line: 6,
        column: 5,
        message: 'environment variable GEB_RULES_MISSING_SECRET is not set',
      }),
    ]);
    expect(message).toContain('rules.yaml:6:5');
  });

  it('refuses a client secret written in the file, without repeating it', () => {
    const text = withConnections(`  eu:
    region: mypurecloud.ie
    clientId: id
    clientSecret: pasted-secret`);
    const error = refusal(text, env);
    expect(error.problems[0]).toMatchObject({ path: 'connections.eu.clientSecret', line: 6 });
    expect(error.message).not.toContain('pasted-secret');
  });

  it('refuses an unknown region, a connection without region or URLs, and a rule naming no connection', () => {
    const text = withConnections(
      `  eu:
    region: mypurecloud.nowhere
    clientId: id
    clientSecret: "\${GEB_RULES_EU_SECRET}"
  us:
    clientId: id
    clientSecret: "\${GEB_RULES_EU_SECRET}"`,
      'apac',
    );
    expect(refusal(text, env).problems.map((p) => p.path)).toEqual([
      'connections.eu.region',
      'connections.us',
      'rules[0].connection',
    ]);
  });

  it('keeps unknown keys errors', () => {
    const text = withConnections(`  eu:
    region: mypurecloud.ie
    clientId: id
    clientSecret: "\${GEB_RULES_EU_SECRET}"
    scope: all`);
    expect(refusal(text, env).problems[0]).toMatchObject({
      path: 'connections.eu.scope',
      message: expect.stringMatching(/^unknown key "scope" \(allowed here: .*\)$/) as unknown,
    });
  });
});

describe('geb rules test and the keys', () => {
  it('shows the keys a rule declares, and reports a key the event cannot render as that rule’s error', async () => {
    const { dryRun } = await import('../../src/commands/rules.js');
    const text = withKey('receipt-{{ orderId }}').replace(
      'idempotencyKey:',
      'orderingKey: "customer-{{ customer.id }}"\n    idempotencyKey:',
    );
    const rules = parseRules(text, 'rules.yaml');
    const run = (event: object) =>
      dryRun(rules, { topic: 'shop.orders', value: Buffer.from(JSON.stringify(event)), headers: {} });

    const ok = run({ orderId: 'A-1', customer: { id: 'C-1', email: 'ada@example.com' } });
    expect(ok.errors).toEqual([]);
    expect(ok.matches[0]).toMatchObject({ orderingKey: 'customer-C-1', idempotencyKey: 'receipt-A-1' });

    const missing = run({ orderId: 'A-1', customer: { email: 'ada@example.com' } });
    expect(missing.matches).toEqual([]);
    expect(missing.errors).toHaveLength(1);
    expect(missing.errors[0]).toMatchObject({ rule: 'receipt', code: 'TEMPLATE_VARIABLE_MISSING' });
    expect(missing.errors[0]?.message).toContain('orderingKey');
  });
});
