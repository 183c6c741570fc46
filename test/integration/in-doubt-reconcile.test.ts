import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/delivery/ledger/file-ledger.js';
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

const EMAILS = '/api/v2/conversations/emails/agentless';

/**
 * A crash left three deliveries pending (at-most-once): one Genesys did get, one it never got, one sent twice to the
 * same recipient in the window (ambiguous). The restarted bridge reconciles them against the analytics query.
 */
describe('in-doubt deliveries reconciled against Genesys (real broker, simulator)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let dir: string;
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'geb-reconcile-'));
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    await createTopic(`${topic}.outcomes`);
    const res = await fetch(`${simulator.url}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('geb-local-client:geb-local-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    token = ((await res.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the crashed run got out before it died: a send straight to the simulator. */
  const sentBeforeCrash = async (to: string) => {
    const res = await fetch(`${simulator.url}${EMAILS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        senderType: 'Outbound',
        fromAddress: { email: 'orders@shop.example' },
        toAddresses: [{ email: to }],
        subject: 'Shipped',
        textBody: 'Shipped',
      }),
    });
    return ((await res.json()) as { conversationId: string }).conversationId;
  };

  it('records the sent one sent with its conversation id, sends the unsent one once, leaves the ambiguous one in doubt', async () => {
    const ledgerFile = join(dir, 'ledger.jsonl');
    const crashed = FileLedger.open(ledgerFile);
    const orders = [
      { orderId: 'R-1', email: 'sent@example.com' },
      { orderId: 'R-2', email: 'never@example.com' },
      { orderId: 'R-3', email: 'twice@example.com' },
    ];
    for (const [offset, o] of orders.entries()) {
      await crashed.begin({
        rule: 'shipped',
        idempotencyKey: o.orderId,
        topic,
        partition: 0,
        offset: String(offset),
        key: o.orderId,
        recipientHash: personalDataHash(o.email),
        owner: 'crashed-bridge',
      });
    }
    await crashed.close();
    const conversation = await sentBeforeCrash('sent@example.com');
    await sentBeforeCrash('twice@example.com');
    await sentBeforeCrash('twice@example.com');
    simulator.clearReceived();

    await produce(
      topic,
      orders.map((o) => ({ key: o.orderId, value: { type: 'OrderShipped', ...o } })),
    );
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      LEDGER_URL: ledgerFile,
      RECONCILE_ANALYTICS_LAG_MS: '200',
      STATUS_CHECKS: '0',
      OUTCOME_TOPIC: '{topic}.outcomes',
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
    const ledger = running.bridge.ledger;
    const lookup = (k: string) => ledger.lookup({ rule: 'shipped', idempotencyKey: k });
    await waitFor(
      async () =>
        (await lookup('R-1'))?.state === 'sent' &&
        (await lookup('R-2'))?.state === 'sent' &&
        (await lookup('R-3'))?.state === 'in-doubt' &&
        ((await lookup('R-3'))?.reason ?? '').includes('ambiguous'),
      { what: 'the three in-doubt deliveries to be reconciled', timeoutMs: 60_000 },
    );
    expect((await lookup('R-1'))?.genesysId).toBe(conversation);
    // Only the one Genesys never got was sent, once.
    const sends = simulator.received(EMAILS);
    expect(sends).toHaveLength(1);
    expect(JSON.stringify(sends[0]?.body)).toContain('never@example.com');
    expect((await lookup('R-2'))?.genesysId).toBe(
      (sends[0]?.response as { conversationId: string }).conversationId,
    );
    expect((await lookup('R-3'))?.reason).toMatch(/ambiguous: 2 outbound emails/);

    const outcomes = (await readTopic(`${topic}.outcomes`, 3, 30_000)).map(
      (m) => JSON.parse(m.value?.toString() ?? '') as Record<string, unknown>,
    );
    expect(outcomes.map((o) => `${String(o['idempotencyKey'])}:${String(o['outcome'])}`).sort()).toEqual([
      'R-1:resolved',
      'R-2:sent',
      'R-3:in-doubt',
    ]);
  });
});
