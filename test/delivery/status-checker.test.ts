import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/delivery/ledger/file-ledger.js';
import type { DeliveryRecord } from '../../src/delivery/ledger/ledger.js';
import type { OutcomeEvent } from '../../src/delivery/outcome-event.js';
import { StatusChecker, scrub } from '../../src/delivery/status-checker.js';
import { GenesysClient } from '../../src/genesys/client.js';
import { createHttp } from '../../src/genesys/http.js';
import { RateLimiter } from '../../src/genesys/rate-limiter.js';
import { StatusClient } from '../../src/genesys/status-client.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import { Secret } from '../../src/secret.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger, recipientHasher } from '../../src/telemetry/logger.js';

/** The bridges in this test run without RECIPIENT_HASH_KEY: the unkeyed hash. */
const personalDataHash = recipientHasher(undefined);
import { Metrics } from '../../src/telemetry/metrics.js';
import { waitFor } from '../support/wait.js';

let simulator: GenesysSimulator;
let sender: GenesysClient;
let statusClient: StatusClient;
let limiter: RateLimiter;
let dir: string;
let ledger: FileLedger;
let checker: StatusChecker | undefined;

beforeAll(async () => {
  simulator = await GenesysSimulator.start();
  const http = createHttp({ requestTimeoutMs: 5_000 });
  const tokens = new TokenProvider({
    tokenUrl: `${simulator.url}/oauth/token`,
    clientId: DEFAULT_SIMULATOR_CLIENT.id,
    clientSecret: new Secret(DEFAULT_SIMULATOR_CLIENT.secret),
    http,
    logger: createLogger('silent'),
  });
  limiter = new RateLimiter({
    perClient: { limit: 300, windowMs: 60_000 },
    orgByAction: {},
    logger: createLogger('silent'),
  });
  sender = new GenesysClient({ apiBaseUrl: simulator.url, http, tokens, limiter });
  statusClient = new StatusClient({ apiBaseUrl: simulator.url, http, tokens, limiter });
});
afterAll(async () => {
  await limiter.close();
  await simulator.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'geb-status-'));
  ledger = FileLedger.open(join(dir, 'ledger.jsonl'));
  simulator.setFaults({ bounceDomains: ['bounce.example', '+1555999'] }, { replace: true });
});
afterEach(async () => {
  await checker?.stop();
  checker = undefined;
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;

/** Sends for real through the simulator and claims/marks the ledger as the pipeline does; returns the 'sent' outcome. */
async function send(kind: 'email' | 'message', to: string): Promise<OutcomeEvent> {
  seq += 1;
  const ref = {
    rule: 'r',
    idempotencyKey: `t/0/${seq}`,
    topic: 't',
    partition: 0,
    offset: String(seq),
    key: `k${seq}`,
  };
  await ledger.begin({ ...ref, owner: 'me', recipientHash: personalDataHash(to) });
  const response =
    kind === 'email'
      ? await sender.send({
          method: 'POST',
          path: '/api/v2/conversations/emails/agentless',
          body: {
            senderType: 'Outbound',
            fromAddress: { email: 'orders@shop.example' },
            toAddresses: [{ email: to }],
            subject: 'Shipped',
            textBody: 'Your order shipped',
          },
        })
      : await sender.send({
          method: 'POST',
          path: '/api/v2/conversations/messages/agentless',
          body: { fromAddress: '+15550001', toAddress: to, toAddressMessengerType: 'sms', textBody: 'hi' },
        });
  const conversationId = response.body['conversationId'] as string;
  await ledger.markSent(ref, {
    genesysId: conversationId,
    correlationId: response.correlationId,
    attempts: 1,
  });
  return {
    outcome: 'sent',
    at: new Date().toISOString(),
    rule: 'r',
    action: kind === 'email' ? 'agentlessEmail' : 'agentlessMessage',
    idempotencyKey: ref.idempotencyKey,
    event: { topic: 't', partition: 0, offset: ref.offset, key: ref.key },
    genesys: {
      conversationId,
      messageId: kind === 'message' ? (response.body['id'] as string) : undefined,
      correlationId: response.correlationId,
    },
    recipientHash: personalDataHash(to),
  };
}

function start(maxChecks = 3, told: OutcomeEvent[] = [], metrics?: Metrics): StatusChecker {
  checker = new StatusChecker({
    ledger,
    clientFor: (rule) => (rule === 'r' ? statusClient : undefined),
    firstCheckAfterMs: 50,
    checkEveryMs: 100,
    maxChecks,
    logger: createLogger('silent'),
    metrics,
    onOutcome: (e) => told.push(e),
  });
  return checker;
}

async function settled(keys: readonly string[], deadlineMs = 20_000): Promise<DeliveryRecord[]> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const records = await Promise.all(keys.map((k) => ledger.lookup({ rule: 'r', idempotencyKey: k })));
    if (records.every((r) => r && r.state !== 'sent') || Date.now() > end) return records as DeliveryRecord[];
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('StatusChecker against the simulator', () => {
  it('records delivered, bounced (free of the address), and a message’s delivered and failed status', async () => {
    const told: OutcomeEvent[] = [];
    const metrics = new Metrics({ processMetrics: false });
    const c = start(3, told, metrics);
    const events = [
      await send('email', 'ada@fine.example'),
      await send('email', 'nobody@bounce.example'),
      await send('message', '+15550002'),
      await send('message', '+15559990000'),
    ];
    for (const e of events) c.track(e);
    const [delivered, bounced, messageOk, messageFailed] = await settled(
      events.map((e) => e.idempotencyKey as string),
    );
    expect(delivered).toMatchObject({ state: 'delivered' });
    expect(bounced).toMatchObject({ state: 'bounced', errorCode: 'email.delivery.failed' });
    expect(bounced?.reason).toContain('550');
    expect(bounced?.reason).not.toContain('@');
    expect(messageOk).toMatchObject({ state: 'delivered' });
    expect(messageFailed).toMatchObject({ state: 'failed-downstream', errorCode: 'DeliveryFailed' });
    // The listener is told once the ledger's write is synced, which is after the record shows in lookups: on a busy
    // machine the last one can still be on its way here (this failed once under CPU load).
    await waitFor(() => told.length >= 4, { what: 'the four outcomes told to the listener' });
    expect(told.map((e) => e.outcome).sort()).toEqual([
      'bounced',
      'delivered',
      'delivered',
      'failed-downstream',
    ]);
    // One batched analytics call answered all four: the per-conversation calls were only for the bounce's details.
    const analytics = simulator.received().filter((r) => r.path.startsWith('/api/v2/analytics/'));
    expect(analytics.length).toBeGreaterThanOrEqual(1);
    expect(analytics[0]?.path).toContain(events.map((e) => `id=${e.genesys?.conversationId}`).join('&'));
    expect((await metrics.render()).body).toMatch(/geb_delivery_status_total\{rule="r",status="bounced"\} 1/);
  });

  it('without the analytics permission: a bounce is still found on the conversation, a delivery stays unknown with the reason', async () => {
    simulator.setFaults({ analyticsStatus: 403 });
    const c = start(2);
    const events = [await send('email', 'ada@fine.example'), await send('email', 'x@bounce.example')];
    for (const e of events) c.track(e);
    const [delivered, bounced] = await settled(events.map((e) => e.idempotencyKey as string));
    expect(delivered?.state).toBe('unknown');
    expect(delivered?.reason).toMatch(/after 2 check\(s\).*HTTP 403 missing\.permissions/);
    expect(bounced?.state).toBe('bounced');
  });

  it('never guesses: no deliveryStatus in analytics leaves a delivered email unknown, a bounce not yet visible is waited for', async () => {
    simulator.setFaults({ omitDeliveryStatus: true, bounceAfterMs: 250 });
    const c = start(5);
    const events = [await send('email', 'ada@fine.example'), await send('email', 'late@bounce.example')];
    for (const e of events) c.track(e);
    const [delivered, bounced] = await settled(events.map((e) => e.idempotencyKey as string));
    expect(delivered).toMatchObject({ state: 'unknown' });
    expect(delivered?.reason).toContain('no deliveryStatus');
    expect(bounced).toMatchObject({ state: 'bounced' });
  });

  it('scrubs addresses and phone numbers but keeps SMTP codes', () => {
    expect(scrub('Delivery to a.b@c.example failed: 550 5.1.1 user unknown')).toBe(
      'Delivery to <address> failed: 550 5.1.1 user unknown',
    );
    expect(scrub('number +44 20 7946 0958 unreachable')).toBe('number <number> unreachable');
  });
});
