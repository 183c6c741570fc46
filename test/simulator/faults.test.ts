import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { faultsFromFlags } from '../../src/commands/simulator.js';
import { DEFAULT_FAULTS, WindowLog, drawFault, mergeFaults } from '../../src/simulator/faults.js';
import { GenesysSimulator } from '../../src/simulator/server.js';

const CLIENTS = [
  { id: 'client-a', secret: 'secret-a' },
  { id: 'client-b', secret: 'secret-b' },
];
const EMAIL_PATH = '/api/v2/conversations/emails/agentless';
const email = {
  senderType: 'Outbound',
  fromAddress: { email: 'orders@shop.example' },
  toAddresses: [{ email: 'ada@example.com' }],
  subject: 'Hi',
  textBody: 'Hello',
};

let sim: GenesysSimulator;
beforeEach(async () => {
  sim = await GenesysSimulator.start({ clients: CLIENTS });
});
afterEach(() => sim.close());

async function token(client = CLIENTS[0]!): Promise<string> {
  const res = await fetch(`${sim.url}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

function send(bearer: string): Promise<Response> {
  return fetch(`${sim.url}${EMAIL_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify(email),
  });
}

function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${sim.url}/__simulator/${path}`, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

describe('fault settings', () => {
  it('default to no faults and Genesys rate limits (300 a minute per token and per organisation)', () => {
    expect(DEFAULT_FAULTS).toMatchObject({
      latencyMs: 0,
      dropRate: 0,
      hangRate: 0,
      failureRates: {},
      perTokenLimit: 300,
      orgEmailLimit: 300,
      rateWindowMs: 60_000,
    });
  });

  it('refuse unknown switches, out-of-range values and rates adding up past 1, naming each', () => {
    expect(() => mergeFaults(DEFAULT_FAULTS, { latncyMs: 5 })).toThrow(/unknown fault "latncyMs"/);
    expect(() => mergeFaults(DEFAULT_FAULTS, { dropRate: 2 })).toThrow(
      /dropRate must be a number from 0 to 1/,
    );
    expect(() => mergeFaults(DEFAULT_FAULTS, { failureRates: { '418': 0.5 } })).toThrow(/status 418/);
    expect(() => mergeFaults(DEFAULT_FAULTS, { failureRates: { '500': 0.6, '503': 0.6 } })).toThrow(
      /more than 1/,
    );
  });

  it('draw statuses with their rates', () => {
    const faults = mergeFaults(DEFAULT_FAULTS, { failureRates: { '503': 0.5, '429': 0.25 } });
    expect(drawFault(faults, () => 0.1)).toEqual({ kind: 'status', status: 429 });
    expect(drawFault(faults, () => 0.4)).toEqual({ kind: 'status', status: 503 });
    expect(drawFault(faults, () => 0.9)).toBeUndefined();
    expect(drawFault(mergeFaults(DEFAULT_FAULTS, { dropRate: 1 }))).toEqual({ kind: 'drop' });
  });

  it('come from `geb simulator` flags', () => {
    expect(
      faultsFromFlags({
        'latency-ms': '100',
        'failure-rate': ['503=0.2', '429=0.1'],
        'per-token-limit': '0',
        'rate-window-ms': '1000',
      }),
    ).toMatchObject({
      latencyMs: 100,
      failureRates: { '503': 0.2, '429': 0.1 },
      perTokenLimit: 0,
      rateWindowMs: 1000,
    });
    expect(() => faultsFromFlags({ 'failure-rate': ['503'] })).toThrow(/STATUS=PROBABILITY/);
    expect(() => faultsFromFlags({ 'drop-rate': 'often' })).toThrow(/--drop-rate/);
  });
});

describe('WindowLog', () => {
  it('counts within a sliding window and remembers the peak', () => {
    const log = new WindowLog();
    for (const t of [0, 100, 200, 900]) log.add(t, 1_000);
    expect(log.count(999, 1_000)).toBe(4);
    expect(log.count(1_150, 1_000)).toBe(2);
    expect(log.msUntilFree(1_150, 1_000)).toBe(50);
    expect(log.max).toBe(4);
  });
});

describe('simulator faults over HTTP', () => {
  it('enforces the per-token limit like Genesys: 429, Retry-After and the too.many.requests body', async () => {
    sim.setFaults({ perTokenLimit: 2, rateWindowMs: 5_000 });
    const bearer = await token();
    expect((await send(bearer)).status).toBe(200);
    expect((await send(bearer)).status).toBe(200);
    const limited = await send(bearer);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await limited.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 429,
      code: 'too.many.requests.retry.after',
      details: [],
      errors: [],
    });
    expect(body['message']).toMatch(
      /^Rate limit exceeded the maximum\. Retry the request in \[\d+\] seconds$/,
    );
    expect(body['contextId']).toBe(limited.headers.get('inin-correlation-id'));
    // Another token has its own budget.
    expect((await send(await token(CLIENTS[1]))).status).toBe(200);
    expect(sim.stats().maxCallsPerTokenInWindow).toBe(2);
  });

  it('enforces the organisation email budget across tokens and counts per client', async () => {
    sim.setFaults({ perTokenLimit: 0, orgEmailLimit: 3, rateWindowMs: 5_000 });
    const a = await token(CLIENTS[0]);
    const b = await token(CLIENTS[1]);
    const statuses = [];
    for (const bearer of [a, b, a, b]) statuses.push((await send(bearer)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const stats = sim.stats();
    expect(stats.acceptedByClient).toEqual({ 'client-a': 2, 'client-b': 1 });
    expect(stats.maxOrgEmailsInWindow).toBe(3);
    expect(stats.requests[EMAIL_PATH]).toEqual({ '200': 3, '429': 1 });
  });

  it('injects statuses, changed while running over the admin endpoint', async () => {
    const bearer = await token();
    const put = await admin('PUT', 'faults', { failureRates: { '503': 1 } });
    expect(put.status).toBe(200);
    expect((await send(bearer)).status).toBe(503);
    await admin('PATCH', 'faults', { failureRates: { '429': 1 }, retryAfterS: 7 });
    const limited = await send(bearer);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect((await admin('PUT', 'faults', {})).status).toBe(200);
    expect((await send(bearer)).status).toBe(200);
    const refused = await admin('PATCH', 'faults', { hangRate: 'sometimes' });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toContain('hangRate');
  });

  it('adds latency, drops connections and hangs', async () => {
    const bearer = await token();
    sim.setFaults({ latencyMs: 150 });
    const started = Date.now();
    expect((await send(bearer)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    sim.setFaults({ latencyMs: 0, dropRate: 1 });
    await expect(send(bearer)).rejects.toThrow();

    sim.setFaults({ dropRate: 0, hangRate: 1 });
    await expect(
      fetch(`${sim.url}${EMAIL_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}` },
        body: JSON.stringify(email),
        signal: AbortSignal.timeout(300),
      }),
    ).rejects.toThrow();
    expect(sim.stats().requests[EMAIL_PATH]).toMatchObject({ dropped: 1, hung: 1 });
  });

  it('fails the token endpoint on demand, and revokes and shortens tokens over the admin endpoint', async () => {
    const bearer = await token();
    expect((await admin('DELETE', 'tokens')).status).toBe(204);
    expect((await send(bearer)).status).toBe(401);
    expect((await admin('PATCH', 'tokens', { lifetimeS: 1 })).status).toBe(200);
    const shortLived = await token();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await send(shortLived)).status).toBe(401);
    sim.setFaults({ tokenEndpointStatus: 503 });
    const res = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('client-a:secret-a').toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(503);
  });
});
