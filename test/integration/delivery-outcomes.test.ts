import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryRecord } from '../../src/delivery/ledger/ledger.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { recipientHasher } from '../../src/telemetry/logger.js';

/** The bridges in this test run without RECIPIENT_HASH_KEY: the unkeyed hash. */
const personalDataHash = recipientHasher(undefined);
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/outcome.schema.json', import.meta.url), 'utf8'),
) as object;

describe('what became of each send: status checks, outcome topic, expiry and suppression (real broker, simulator)', () => {
  const topic = uniqueName('shop.orders');
  const outcomeTopic = `${topic}.outcomes`;
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({
      faults: { bounceDomains: ['bounce.example', '+1555999'], bounceAfterMs: 400 },
    });
    await createTopic(topic);
    await createTopic(outcomeTopic);
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: shipped-email
    topics: [${topic}]
    match: { type: [OrderShipped] }
    maxEventAge: 1h
    idempotencyKey: "{{ orderId }}"
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "Order {{ orderId }} has shipped"
        text: "Your order {{ orderId }} is on its way."
  - name: shipped-sms
    topics: [${topic}]
    match: { type: [OrderShippedSms] }
    idempotencyKey: "{{ orderId }}"
    action:
      agentlessMessage:
        from: "+15550001"
        to: "{{ phone }}"
        messengerType: sms
        text: "Order {{ orderId }} shipped"
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      STATUS_CHECKS: '10',
      STATUS_CHECK_DELAY_MS: '200',
      STATUS_CHECK_INTERVAL_MS: '300',
      OUTCOME_TOPIC: '{topic}.outcomes',
      SUPPRESSION_DAYS: '1',
      ADMIN_TOKEN,
      ...simulatorEnv(simulator),
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  const record = async (rule: string, key: string): Promise<DeliveryRecord | undefined> =>
    running.bridge.ledger.lookup({ rule, idempotencyKey: key });

  it('ends delivered or bounced in the ledger and on the outcome topic, records a message status, skips expired and suppressed', async () => {
    await produce(topic, [
      { key: 'c-1', value: { type: 'OrderShipped', orderId: 'A-1', email: 'ada@fine.example' } },
      { key: 'c-2', value: { type: 'OrderShipped', orderId: 'A-2', email: 'nobody@bounce.example' } },
      { key: 'c-3', value: { type: 'OrderShippedSms', orderId: 'S-3', phone: '+15550002' } },
      { key: 'c-4', value: { type: 'OrderShippedSms', orderId: 'S-4', phone: '+15559990000' } },
      {
        key: 'c-5',
        value: { type: 'OrderShipped', orderId: 'A-5', email: 'ada@fine.example' },
        timestamp: String(Date.now() - 2 * 3_600_000),
      },
    ]);
    const final = (r: DeliveryRecord | undefined, state: string) => r?.state === state;
    await waitFor(
      async () =>
        final(await record('shipped-email', 'A-1'), 'delivered') &&
        final(await record('shipped-email', 'A-2'), 'bounced') &&
        final(await record('shipped-sms', 'S-3'), 'delivered') &&
        final(await record('shipped-sms', 'S-4'), 'failed-downstream') &&
        final(await record('shipped-email', 'A-5'), 'expired'),
      { what: 'every delivery to reach its final status', timeoutMs: 60_000 },
    );
    const bounced = await record('shipped-email', 'A-2');
    expect(bounced).toMatchObject({ errorCode: 'email.delivery.failed' });
    expect(bounced?.reason).not.toContain('@');
    expect((await record('shipped-email', 'A-5'))?.reason).toContain('maxEventAge');

    // The bounced address is suppressed now: a new order to it is not sent.
    const emailsBefore = simulator.received('/api/v2/conversations/emails/agentless').length;
    await produce(topic, [
      { key: 'c-6', value: { type: 'OrderShipped', orderId: 'A-6', email: 'nobody@bounce.example' } },
    ]);
    await waitFor(async () => final(await record('shipped-email', 'A-6'), 'suppressed'), {
      what: 'the order to the bounced address to be suppressed',
      timeoutMs: 30_000,
    });
    expect(simulator.received('/api/v2/conversations/emails/agentless')).toHaveLength(emailsBefore);
    expect((await record('shipped-email', 'A-6'))?.reason).toContain('bounced');

    // The outcome topic: sent ×4, delivered ×2, bounced, failed-downstream, expired, suppressed.
    const outcomes = await readTopic(outcomeTopic, 10, 30_000);
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
    const validate = ajv.compile(schema);
    const values = outcomes.map((m) => JSON.parse(m.value?.toString() ?? '') as Record<string, unknown>);
    for (const value of values) {
      expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
    }
    const text = outcomes.map((m) => m.value?.toString() ?? '').join('\n');
    expect(text).not.toMatch(/@|\+1555|on its way|shipped"/i);
    const byOutcome = (o: string) => values.filter((v) => v['outcome'] === o);
    expect(byOutcome('sent')).toHaveLength(4);
    expect(byOutcome('delivered')).toHaveLength(2);
    const bounce = byOutcome('bounced')[0];
    expect(bounce).toMatchObject({
      rule: 'shipped-email',
      idempotencyKey: 'A-2',
      event: { topic, partition: 0, key: 'c-2' },
      genesys: { conversationId: bounced?.genesysId },
      recipientHash: personalDataHash('nobody@bounce.example'),
      errorCode: 'email.delivery.failed',
    });
    expect(outcomes.find((m) => m.value?.toString().includes('"bounced"'))?.key?.toString()).toBe('c-2');
    expect(byOutcome('failed-downstream')).toHaveLength(1);
    expect(byOutcome('expired')[0]).toMatchObject({ idempotencyKey: 'A-5', event: { key: 'c-5' } });
    expect(byOutcome('suppressed')[0]).toMatchObject({ idempotencyKey: 'A-6' });

    // /deliveries and the metrics show the statuses.
    type History = { deliveries: { idempotencyKey: string; state: string }[] };
    const history = (await (
      await fetch(`${running.bridge.adminUrl}/deliveries?rule=shipped-email`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json()) as History;
    expect(Object.fromEntries(history.deliveries.map((d) => [d.idempotencyKey, d.state]))).toEqual({
      'A-1': 'delivered',
      'A-2': 'bounced',
      'A-5': 'expired',
      'A-6': 'suppressed',
    });
    const metrics = await (await fetch(`${running.bridge.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/geb_delivery_status_total\{rule="shipped-email",status="bounced"\} 1/);
    expect(metrics).toMatch(/geb_delivery_status_total\{rule="shipped-sms",status="delivered"\} 1/);
    expect(running.logs.text).not.toContain('nobody@bounce.example');
  });
});

describe('status checks share the per-token budget at a lower priority (real broker, simulator)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  const LIMIT = 20;
  const WINDOW_MS = 2_000;
  const EVENTS = 40;
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({
      faults: { perTokenLimit: LIMIT, orgEmailLimit: 0, rateWindowMs: WINDOW_MS },
    });
    await createTopic(topic);
  });
  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it(
    'sends and checks every email without a 429, never more than the budget in any window',
    { timeout: 120_000 },
    async () => {
      running = await startTestBridge({
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        GENESYS_CLIENT_RATE_LIMIT: String(LIMIT),
        GENESYS_RATE_WINDOW_MS: String(WINDOW_MS),
        STATUS_CHECKS: '3',
        STATUS_CHECK_DELAY_MS: '0',
        STATUS_CHECK_INTERVAL_MS: '200',
        RULES_FILE: await writeRulesFile(`
version: 1
rules:
  - name: shipped
    topics: [${topic}]
    idempotencyKey: "{{ orderId }}"
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: Shipped
        text: Shipped
`),
        ...simulatorEnv(simulator),
      });
      await produce(
        topic,
        Array.from({ length: EVENTS }, (_, i) => ({
          key: `o-${i}`,
          value: { orderId: `B-${i}`, email: `c${i}@example.com` },
        })),
      );
      await waitFor(
        async () =>
          (await running!.bridge.ledger.query({ rule: 'shipped', state: 'delivered', limit: 1_000 }))
            .length === EVENTS,
        { what: 'every email to be sent and found delivered', timeoutMs: 100_000 },
      );
      const stats = simulator.stats();
      const all = Object.values(stats.requests).flatMap((byStatus) => Object.keys(byStatus));
      expect(all).not.toContain('429');
      expect(stats.maxCallsPerTokenInWindow).toBeLessThanOrEqual(LIMIT);
      const checks = Object.keys(stats.requests).filter((p) => p.startsWith('/api/v2/analytics/'));
      expect(checks.length).toBeGreaterThan(0);
    },
  );
});

const ADMIN_TOKEN = 'the-admin-token-of-tests-0123';
