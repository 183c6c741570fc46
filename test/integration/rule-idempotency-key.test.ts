import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  tempLedgerFile,
  writeRulesFile,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

describe("a rule's idempotencyKey (real broker, simulator, embedded ledger)", () => {
  const topic = uniqueName('idem.orders');
  let simulator: GenesysSimulator;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
  });

  afterAll(async () => {
    await simulator?.close();
  });

  it('sends two events rendering the same key once, and skips the second', async () => {
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: receipt-email
    topics: [${topic}]
    idempotencyKey: "receipt-{{ orderId }}"
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "Receipt {{ orderId }}"
        text: "Thanks."
`);
    // The producer retried: the same order twice at two offsets.
    const order = { orderId: 'A-1', customer: { email: 'ada@example.com' } };
    await produce(topic, [
      { key: 'order-1', value: order },
      { key: 'order-1', value: order },
      { key: 'order-2', value: { customer: { email: 'bob@example.com' } } },
    ]);
    const ledgerUrl = tempLedgerFile();
    const run = async () => {
      const groupId = uniqueName('geb-idem');
      const running = await startTestBridge({
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        RULES_FILE: rulesFile,
        ...simulatorEnv(simulator),
        LEDGER_URL: ledgerUrl,
      });
      try {
        await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 3, {
          what: 'the three events to be committed',
        });
      } finally {
        await running.bridge.close();
      }
      return (
        running.logs
          .records()
          .filter((r) => r['msg'] === 'delivery')
          .map((r) => [r['outcome'], r['idempotencyKey'] ?? r['code']])
          // Events of different Kafka keys run concurrently: their log lines come in any order.
          .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
      );
    };
    const outcomes = await run();
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(1);
    expect(outcomes).toEqual([
      // The third event has no orderId: its key cannot be rendered, so it is dead-lettered like any template.
      ['dead-lettered', 'TEMPLATE_VARIABLE_MISSING'],
      ['sent', undefined],
      ['skipped', 'receipt-A-1'],
    ]);
    // Another group on the same ledger: nothing is sent or dead-lettered again.
    expect(await run()).toEqual([
      ['skipped', `${topic}/0/2`],
      ['skipped', 'receipt-A-1'],
      ['skipped', 'receipt-A-1'],
    ]);
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(1);
  });
});
