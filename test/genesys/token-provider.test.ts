import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { createHttp } from '../../src/genesys/http.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import { Secret } from '../../src/secret.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';

const client = { id: 'tp-client', secret: 'tp-secret-value-0123456789' };
let simulator: GenesysSimulator | undefined;

afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

async function provider(
  options: { secret?: string; lifetimeS?: number; invalidClientStatus?: 400 | 401; now?: () => number } = {},
) {
  simulator = await GenesysSimulator.start({
    clients: [client],
    tokenLifetimeS: options.lifetimeS ?? 3600,
    invalidClientStatus: options.invalidClientStatus ?? 401,
  });
  const logs = new LogCapture();
  const tokens = new TokenProvider({
    tokenUrl: `${simulator.url}/oauth/token`,
    clientId: client.id,
    clientSecret: new Secret(options.secret ?? client.secret),
    http: createHttp({ requestTimeoutMs: 2_000 }),
    logger: createLogger('debug', logs),
    ...(options.now && { now: options.now }),
  });
  return { tokens, sim: simulator, logs };
}

describe('TokenProvider (client-credentials against the simulator over HTTP)', () => {
  it('fetches one token and caches it', async () => {
    const { tokens, sim } = await provider();
    const first = await tokens.getToken();
    const second = await tokens.getToken();
    expect(first.reveal()).toBe(second.reveal());
    expect(sim.tokensIssued).toBe(1);
  });

  it('makes one request however many callers wait', async () => {
    const { tokens, sim } = await provider();
    const all = await Promise.all(Array.from({ length: 25 }, () => tokens.getToken()));
    expect(new Set(all.map((t) => t.reveal())).size).toBe(1);
    expect(sim.tokensIssued).toBe(1);
  });

  it('refreshes ahead of expiry while still handing out the current token', async () => {
    let now = 1_000_000;
    const { tokens, sim } = await provider({ lifetimeS: 300, now: () => now });
    const first = await tokens.getToken();
    now += 200_000; // well before expiry: no refresh
    expect((await tokens.getToken()).reveal()).toBe(first.reveal());
    expect(sim.tokensIssued).toBe(1);
    now += 75_000; // inside the refresh window (last 30 s of 300 s): refreshed in the background
    expect((await tokens.getToken()).reveal()).toBe(first.reveal());
    await expect.poll(() => sim.tokensIssued).toBe(2);
    expect((await tokens.getToken()).reveal()).not.toBe(first.reveal());
  });

  it('waits for a new token once the cached one expired', async () => {
    let now = 1_000_000;
    const { tokens, sim } = await provider({ lifetimeS: 300, now: () => now });
    const first = await tokens.getToken();
    now += 301_000;
    expect((await tokens.getToken()).reveal()).not.toBe(first.reveal());
    expect(sim.tokensIssued).toBe(2);
  });

  it('fetches a new token after invalidate, but only once for a burst of 401s on the same token', async () => {
    const { tokens, sim } = await provider();
    const first = await tokens.getToken();
    tokens.invalidate(first);
    const second = await tokens.getToken();
    tokens.invalidate(first); // a late 401 on the old token must not throw away the new one
    expect((await tokens.getToken()).reveal()).toBe(second.reveal());
    expect(sim.tokensIssued).toBe(2);
  });

  it.each([400, 401] as const)(
    'reports invalid_client (HTTP %i) clearly, without the secret',
    async (status) => {
      const wrong = 'wrong-secret-abcdefghijklmnop';
      const { tokens, logs } = await provider({ secret: wrong, invalidClientStatus: status });
      const error = await tokens.getToken().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BridgeError);
      const e = error as BridgeError;
      expect(e.code).toBe('GENESYS_INVALID_CLIENT');
      expect(e.disposition).toBe('pause');
      expect(e.message).toContain('invalid_client');
      expect(e.message).toContain('GENESYS_REGION');
      const everything = `${e.message} ${JSON.stringify(e)} ${String(e.stack)} ${logs.text}`;
      expect(everything).not.toContain(wrong);
      expect(everything).not.toContain(Buffer.from(`${client.id}:${wrong}`).toString('base64'));
    },
  );

  it('reports an unreachable token endpoint as retryable', async () => {
    const { tokens, sim } = await provider();
    await sim.close();
    simulator = undefined;
    await expect(tokens.getToken()).rejects.toMatchObject({ code: 'TOKEN_UNAVAILABLE', retryable: true });
  });
});
