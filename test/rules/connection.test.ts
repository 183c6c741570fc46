import { describe, expect, it } from 'vitest';
import { RulesFileError, parseRules } from '../../src/rules/rules-file.js';

const withConnection = (lines: string) => `version: 1
connections:
  eu:
${lines}
rules:
  - name: receipt
    topics: [shop.orders]
    connection: eu
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        text: "Thanks"
`;

const SECRET = 'bridge-own-secret-value';
const env = {
  GENESYS_CLIENT_SECRET: SECRET,
  KAFKA_SASL_PASSWORD: SECRET,
  GEB_RULES_EU_ID: 'eu-client',
  GEB_RULES_EU_SECRET: 'eu-secret',
  GEB_RULES_REGION: SECRET,
  GEB_RULES_URL: `https://${SECRET}.example/`,
};

function refusal(text: string, environment: NodeJS.ProcessEnv = env): RulesFileError {
  try {
    parseRules(text, 'rules.yaml', environment);
  } catch (error) {
    expect(error).toBeInstanceOf(RulesFileError);
    return error as RulesFileError;
  }
  throw new Error('expected the rules file to be refused');
}

describe('${NAME} in a rules file reads GEB_RULES_* only', () => {
  it.each(['GENESYS_CLIENT_SECRET', 'KAFKA_SASL_PASSWORD'])(
    'refuses ${%s} at its line and column',
    (name) => {
      const error = refusal(
        withConnection(`    region: mypurecloud.ie
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${${name}}"`),
      );
      expect(error.problems).toEqual([
        expect.objectContaining({
          path: 'connections.eu.clientSecret',
          line: 6,
          column: 5,
        }),
      ]);
      expect(error.problems[0]?.message).toContain(
        'only read environment variables whose names start with GEB_RULES_',
      );
      expect(error.message).toContain('rules.yaml:6:5');
      expect(error.message).not.toContain(SECRET);
    },
  );

  it('never echoes a resolved value: an invalid region read from the environment', () => {
    const error = refusal(
      withConnection(`    region: "\${GEB_RULES_REGION}"
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${GEB_RULES_EU_SECRET}"`),
    );
    expect(error.problems[0]).toMatchObject({ path: 'connections.eu.region', line: 4, column: 5 });
    expect(error.problems[0]?.message).toContain(
      'the value of ${GEB_RULES_REGION} is not a Genesys Cloud region',
    );
    expect(error.message).not.toContain(SECRET);
  });

  it('never echoes a resolved value: a URL read from the environment', () => {
    const error = refusal(
      withConnection(`    apiUrl: "\${GEB_RULES_URL}"
    loginUrl: "\${GEB_RULES_URL}"
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${GEB_RULES_EU_SECRET}"`),
    );
    expect(error.problems.map((p) => p.path)).toEqual(['connections.eu.apiUrl', 'connections.eu.loginUrl']);
    expect(error.message).not.toContain(SECRET);
  });
});

describe('connection URLs: https Genesys hosts, others only if GENESYS_ALLOWED_HOSTS lists them', () => {
  const urls = (api: string, login: string) =>
    withConnection(`    apiUrl: ${api}
    loginUrl: ${login}
    clientId: "\${GEB_RULES_EU_ID}"
    clientSecret: "\${GEB_RULES_EU_SECRET}"`);

  it('accepts the https hosts of a Genesys region', () => {
    const rules = parseRules(
      urls('https://api.mypurecloud.de', 'https://login.mypurecloud.de/'),
      'rules.yaml',
      env,
    );
    expect(rules.rules[0]?.connection?.tokenUrl).toBe('https://login.mypurecloud.de/oauth/token');
  });

  it.each([
    ['another host', 'https://attacker.example', 'https://attacker.example'],
    ['a Genesys host over http', 'http://api.mypurecloud.de', 'http://login.mypurecloud.de'],
    [
      'a look-alike host',
      'https://api.mypurecloud.de.attacker.example',
      'https://login.mypurecloud.de@attacker.example',
    ],
    ['a host on the loopback', 'http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
  ])('refuses %s, at the key', (_name, api, login) => {
    const error = refusal(urls(api, login));
    expect(error.problems).toEqual([
      expect.objectContaining({ path: 'connections.eu.apiUrl', line: 4, column: 5 }),
      expect.objectContaining({ path: 'connections.eu.loginUrl', line: 5, column: 5 }),
    ]);
    expect(error.problems[0]?.message).toContain('GENESYS_ALLOWED_HOSTS');
  });

  it('accepts hosts the operator allows, over http too; a port in the entry allows that port only', () => {
    const allowing = { ...env, GENESYS_ALLOWED_HOSTS: 'sim.internal, 127.0.0.1:8080' };
    const rules = parseRules(
      urls('http://sim.internal:1234', 'http://127.0.0.1:8080'),
      'rules.yaml',
      allowing,
    );
    expect(rules.rules[0]?.connection).toMatchObject({
      apiBaseUrl: 'http://sim.internal:1234',
      tokenUrl: 'http://127.0.0.1:8080/oauth/token',
    });
    expect(refusal(urls('http://sim.internal', 'http://127.0.0.1:8081'), allowing).problems).toEqual([
      expect.objectContaining({ path: 'connections.eu.loginUrl' }),
    ]);
  });
});
