import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/delivery/outcome.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry-policy.js';
import { isBridgeError, type BridgeError } from '../../src/errors.js';
import { AGENTLESS_EMAIL_PATH, requestFor } from '../../src/genesys/actions.js';
import { GenesysClient } from '../../src/genesys/client.js';
import { createHttp } from '../../src/genesys/http.js';
import { RateLimiter } from '../../src/genesys/rate-limiter.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import { Secret } from '../../src/secret.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger } from '../../src/telemetry/logger.js';

let simulator: GenesysSimulator;

function clientFor(options: { requestTimeoutMs?: number; limiter?: Pick<RateLimiter, 'acquire'> } = {}) {
  const http = createHttp({ requestTimeoutMs: options.requestTimeoutMs ?? 2_000 });
  const tokens = new TokenProvider({
    tokenUrl: `${simulator.url}/oauth/token`,
    clientId: DEFAULT_SIMULATOR_CLIENT.id,
    clientSecret: new Secret(DEFAULT_SIMULATOR_CLIENT.secret),
    http,
    logger: createLogger('silent'),
  });
  return {
    tokens,
    client: new GenesysClient({
      apiBaseUrl: simulator.url,
      http,
      tokens,
      ...(options.limiter && { limiter: options.limiter }),
    }),
  };
}

beforeAll(async () => {
  simulator = await GenesysSimulator.start();
});
afterEach(() => {
  simulator.setFaults({}, { replace: true });
});
afterAll(() => simulator.close());

const email = requestFor({
  kind: 'agentlessEmail',
  from: { email: 'orders@shop.example' },
  to: { email: 'ada@example.com' },
  subject: 'Hi',
  text: 'Hello',
});

async function failureOf(promise: Promise<unknown>): Promise<BridgeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isBridgeError(error)) throw new Error(`expected a BridgeError, got ${String(error)}`);
  return error;
}

describe('GenesysClient resilience', () => {
  it('keeps the correlation id of every call: the refused one and its retry after a 401', async () => {
    const { client } = clientFor();
    await client.send(email);
    simulator.revokeTokens();
    const response = await client.send(email);
    const calls = simulator.received(AGENTLESS_EMAIL_PATH).slice(-2);
    expect(calls.map((c) => c.status)).toEqual([401, 200]);
    expect(response.correlationIds).toEqual(calls.map((c) => c.correlationId));
  });

  it('holds back every call of the OAuth client after a 429, not only the one that got it', async () => {
    const { client } = clientFor();
    await client.send(email);
    simulator.setFaults({ failureRates: { '429': 1 }, retryAfterS: 1 });
    const limited = await failureOf(client.send(email));
    expect(limited).toMatchObject({ code: 'GENESYS_RATE_LIMITED', retryAfterMs: 1_000 });
    expect(limited.correlationIds).toHaveLength(1);
    expect(client.retryAfterLeftMs).toBeGreaterThan(0);
    simulator.setFaults({ failureRates: {} });
    const before = simulator.received(AGENTLESS_EMAIL_PATH).length;

    // Another call, which never saw the 429, waits the Retry-After out before it goes.
    const other = client.send(email);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(simulator.received(AGENTLESS_EMAIL_PATH).length).toBe(before);
    const response = await other;
    expect(response.status).toBe(200);
    expect(response.waitedMs).toBeGreaterThan(0);
  });

  it('gives a call held at the Retry-After gate a new turn of the rate budget: the one it had has passed', async () => {
    // The second turn handed out is held back until the other call has got its 429 (and closed the gate).
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let turns = 0;
    const limiter = {
      acquire: async () => {
        turns += 1;
        if (turns === 2) await released;
        return 0;
      },
    };
    const { client } = clientFor({ limiter });
    simulator.setFaults({ failureRates: { '429': 1 }, retryAfterS: 1 });
    const sends = [client.send(email), client.send(email)];
    await Promise.race(sends.map((send) => send.catch(() => undefined)));
    simulator.setFaults({ failureRates: {} });
    release();
    const [a, b] = await Promise.allSettled(sends);
    const outcomes = [a, b].map((r) =>
      r?.status === 'fulfilled' ? r.value.status : (r?.reason as BridgeError).code,
    );
    expect(new Set(outcomes)).toEqual(new Set([200, 'GENESYS_RATE_LIMITED']));
    // The held call waited out the Retry-After, then took a third turn rather than going on its stale one.
    expect(turns).toBe(3);
  });

  it('aborts a Retry-After wait when the bridge stops', async () => {
    const { client } = clientFor();
    simulator.setFaults({ failureRates: { '429': 1 }, retryAfterS: 30 });
    await failureOf(client.send(email));
    const stop = new AbortController();
    const waiting = client.send(email, undefined, { waitSignal: stop.signal });
    stop.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'ShutdownError' });
  });

  it.each([
    [{ failureRates: { '503': 1 } }, 'GENESYS_UNAVAILABLE', 503],
    [{ failureRates: { '500': 1 } }, 'GENESYS_UNAVAILABLE', 500],
    [{ failureRates: { '408': 1 } }, 'GENESYS_UNAVAILABLE', 408],
    [{ dropRate: 1 }, 'GENESYS_UNREACHABLE', undefined],
    [{ hangRate: 1 }, 'GENESYS_UNAVAILABLE', undefined],
  ] as const)('classifies %j as a retryable %s', async (faults, code, status) => {
    const { client } = clientFor({ requestTimeoutMs: 300 });
    await client.send(email);
    simulator.setFaults(faults);
    const error = await failureOf(client.send(email));
    expect(error).toMatchObject({ code, status, disposition: 'retry' });
    expect(decide(error, 1, DEFAULT_RETRY_POLICY).kind).toBe('retry');
  });

  it('takes a token endpoint that keeps failing as systemic once past the retry bound: pause, never dead-letter', async () => {
    simulator.setFaults({ tokenEndpointStatus: 503 });
    const { client } = clientFor();
    const error = await failureOf(client.send(email));
    expect(error.code).toBe('TOKEN_UNAVAILABLE');
    expect(decide(error, 1, DEFAULT_RETRY_POLICY).kind).toBe('retry');
    expect(decide(error, DEFAULT_RETRY_POLICY.maxAttempts ?? 0, DEFAULT_RETRY_POLICY)).toMatchObject({
      kind: 'pause',
      code: 'TOKEN_UNAVAILABLE',
    });
  });

  it('acquires the rate budget before each call and reports the wait', async () => {
    const limiter = new RateLimiter({
      perClient: { limit: 10, windowMs: 1_000 },
      orgByAction: {},
      logger: createLogger('silent'),
    });
    const { client } = clientFor({ limiter });
    const responses = await Promise.all([client.send(email), client.send(email), client.send(email)]);
    // No burst, then 8 a second (10 per 1.25 s: the window and the jitter allowance): the second and third waited.
    expect(responses.filter((r) => r.waitedMs > 0)).toHaveLength(2);
  });
});
