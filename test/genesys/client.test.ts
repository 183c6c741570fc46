import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH, requestFor } from '../../src/genesys/actions.js';
import { GenesysClient } from '../../src/genesys/client.js';
import { createHttp } from '../../src/genesys/http.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import { Secret } from '../../src/secret.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger } from '../../src/telemetry/logger.js';

let simulator: GenesysSimulator;
let client: GenesysClient;
let tokens: TokenProvider;

beforeAll(async () => {
  simulator = await GenesysSimulator.start();
  const http = createHttp({ requestTimeoutMs: 2_000 });
  tokens = new TokenProvider({
    tokenUrl: `${simulator.url}/oauth/token`,
    clientId: DEFAULT_SIMULATOR_CLIENT.id,
    clientSecret: new Secret(DEFAULT_SIMULATOR_CLIENT.secret),
    http,
    logger: createLogger('silent'),
  });
  client = new GenesysClient({ apiBaseUrl: simulator.url, http, tokens });
});
afterAll(() => simulator.close());

const email = requestFor({
  kind: 'agentlessEmail',
  from: { email: 'orders@shop.example', name: 'Shop' },
  to: { email: 'ada@example.com' },
  subject: 'Hi',
  text: 'Hello',
});

describe('GenesysClient', () => {
  it('sends with the bearer token and returns the conversation id and correlation id', async () => {
    const response = await client.send(email);
    const [received] = simulator.received(AGENTLESS_EMAIL_PATH).slice(-1);
    expect(response.status).toBe(200);
    expect(response.body['conversationId']).toEqual(expect.any(String));
    expect(response.correlationId).toBe(received?.correlationId);
    expect(received?.clientId).toBe(DEFAULT_SIMULATOR_CLIENT.id);
  });

  it('on a 401 (token revoked) gets one new token and retries once', async () => {
    await client.send(email);
    const issued = simulator.tokensIssued;
    simulator.revokeTokens();
    const response = await client.send(email);
    expect(response.calls).toBe(2);
    expect(simulator.tokensIssued).toBe(issued + 1);
  });

  it('turns a 400 into a final GENESYS_REJECTED naming the fields, never the values', async () => {
    const bad = requestFor({
      kind: 'agentlessEmail',
      from: { email: 'orders@shop.example' },
      to: { email: 'ada@example' },
    });
    const error = await client.send(bad).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string; disposition: string; correlationId: string },
    );
    expect(error?.code).toBe('GENESYS_REJECTED');
    expect(error?.disposition).toBe('dead-letter');
    expect(error?.message).toContain('toAddresses[0].email');
    expect(error?.message).not.toContain('ada@example');
    expect(error?.correlationId).toBe(simulator.received(AGENTLESS_EMAIL_PATH).slice(-1)[0]?.correlationId);
  });

  it('turns a connection failure into a retryable GENESYS_UNREACHABLE', async () => {
    const offline = new GenesysClient({
      apiBaseUrl: 'http://127.0.0.1:1',
      http: createHttp({ requestTimeoutMs: 1_000 }),
      tokens,
    });
    await expect(offline.send(email)).rejects.toMatchObject({ code: 'GENESYS_UNREACHABLE', retryable: true });
  });
});
