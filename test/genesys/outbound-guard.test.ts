import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { AGENTLESS_EMAIL_PATH, contactsPath } from '../../src/genesys/actions.js';
import { GenesysClient } from '../../src/genesys/client.js';
import { createHttp } from '../../src/genesys/http.js';
import { apiUrlOf } from '../../src/genesys/outbound-guard.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import { compileAction } from '../../src/rules/action.js';
import { templateScope } from '../../src/rules/template.js';
import { Secret } from '../../src/secret.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger } from '../../src/telemetry/logger.js';

const SMUGGLED = [
  'x/../../other',
  '../../../oauth/token',
  'https://evil.example/',
  '//evil.example',
  '%2F..',
  '%2e%2e',
  '..',
  'list?x=1',
  'list#frag',
  'list\\..\\other',
  'user@evil.example',
];

function thrown(fn: () => unknown): BridgeError {
  try {
    fn();
  } catch (error) {
    if (error instanceof BridgeError) return error;
    throw error;
  }
  throw new Error('expected a BridgeError');
}

describe('a value rendered into a URL path', () => {
  const contact = compileAction(
    { campaignContact: { contactListId: '{{ list }}', data: { name: 'x' } } },
    'rules[0].action',
  );

  it.each(SMUGGLED)('refuses %j as a contact list id, without quoting it', (list) => {
    const error = thrown(() => contact.render(templateScope({ list })));
    expect(error.code).toBe('INVALID_FIELD_VALUE');
    expect(error.disposition).toBe('dead-letter');
    expect(error.message).not.toContain(list);
  });
});

describe('apiUrlOf (the client only calls below /api/v2/ of the configured API)', () => {
  const base = 'https://api.mypurecloud.ie';

  it.each([AGENTLESS_EMAIL_PATH, `${contactsPath('3f1c-a9_b')}?priority=true`])('allows %s', (path) => {
    expect(apiUrlOf(base, path)).toBe(`${base}${path}`);
  });

  it('keeps a base URL path as the prefix', () => {
    expect(apiUrlOf('http://127.0.0.1:8089/genesys', AGENTLESS_EMAIL_PATH)).toBe(
      `http://127.0.0.1:8089/genesys${AGENTLESS_EMAIL_PATH}`,
    );
  });

  it.each([
    '/oauth/token',
    '/api/v1/conversations',
    'api/v2/conversations',
    '@evil.example/api/v2/x',
    '.evil.example/api/v2/x',
    ':8080/api/v2/x',
    '//evil.example/api/v2/x',
    '/api/v2/../../oauth/token',
    '/api/v2/x/%2e%2e/%2E%2E/oauth/token',
    '/api/v2/x/%2F../y',
    '/api/v2/x/%5c..%5cy',
    '/api/v2/x\\..\\y',
    '/api/v2/x//y',
    '/api/v2/x#y',
    '/api/v2/x@evil.example',
  ])('refuses %s', (path) => {
    const error = thrown(() => apiUrlOf(base, path));
    expect(error.code).toBe('OUTBOUND_PATH_REFUSED');
    expect(error.disposition).toBe('dead-letter');
    expect(error.message).not.toContain(path);
  });

  it.each(SMUGGLED)('even unvalidated, %j in contactsPath stays one segment of the contacts path', (list) => {
    // Belt and braces behind the contact list id check: encoding alone keeps the call in place, or it is refused.
    let url: string;
    try {
      url = apiUrlOf(base, contactsPath(list));
    } catch (error) {
      expect((error as BridgeError).code).toBe('OUTBOUND_PATH_REFUSED');
      return;
    }
    const { origin, pathname } = new URL(url);
    expect(origin).toBe(base);
    expect(pathname).toMatch(/^\/api\/v2\/outbound\/contactlists\/[^/]+\/contacts$/);
  });
});

describe('GenesysClient outbound guard', () => {
  let simulator: GenesysSimulator;
  let client: GenesysClient;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    const http = createHttp({ requestTimeoutMs: 2_000 });
    const tokens = new TokenProvider({
      tokenUrl: `${simulator.url}/oauth/token`,
      clientId: DEFAULT_SIMULATOR_CLIENT.id,
      clientSecret: new Secret(DEFAULT_SIMULATOR_CLIENT.secret),
      http,
      logger: createLogger('silent'),
    });
    client = new GenesysClient({ apiBaseUrl: simulator.url, http, tokens });
  });
  afterAll(() => simulator.close());

  it.each(['/oauth/token', '/api/v2/../../__simulator/requests', '/api/v2/x/%2e%2e/%2e%2e/oauth/token'])(
    'refuses to call %s: no request (not even for a token) leaves the bridge',
    async (path) => {
      const error = await client.send({ method: 'POST', path, body: {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BridgeError);
      expect((error as BridgeError).code).toBe('OUTBOUND_PATH_REFUSED');
      expect(simulator.received()).toEqual([]);
    },
  );
});
