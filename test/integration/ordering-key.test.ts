import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEAD_LETTER_HEADERS } from '../../src/kafka/dead-letter.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';

const EVENTS = 48;

/**
 * Records without a Kafka key (so the default would keep no order), two rules ordering by the customer in the event,
 * and a simulator whose answers come back after a random 10–90 ms: without the orderingKey, a customer's emails would
 * reach Genesys in any order.
 */
describe("a rule's orderingKey (real broker, simulator with random latency)", () => {
  const topic = uniqueName('ordering.orders');
  const groupId = uniqueName('geb-ordering');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ faults: { latencyMs: 10, latencyJitterMs: 80 } });
    await createTopic(topic, 1);
    await createTopic(`${topic}.dlq`, 1);
    const email = (what: string) => `
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer }}@example.com" }
        subject: "{{ customer }} {{ seq }} ${what}"
        text: "Event {{ seq }}."`;
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: order-placed
    topics: [${topic}]
    match: { type: [placed] }
    orderingKey: "{{ customer }}"${email('placed')}
  - name: order-shipped
    topics: [${topic}]
    match: { type: [shipped] }
    orderingKey: "{{ customer }}"${email('shipped')}
  - name: gift-note
    topics: [${topic}]
    match: { type: [gift] }
    orderingKey: "{{ recipient.id }}"${email('gift')}
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      DEAD_LETTER_TOPIC: `${topic}.dlq`,
      PARTITION_MAX_IN_FLIGHT: '6',
      KAFKA_COMMIT_INTERVAL_MS: '200',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it("sends each customer's emails, from both rules, one at a time in offset order, other customers' at once", async () => {
    const customers = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    const records = Array.from({ length: EVENTS }, (_, seq) => ({
      value: {
        type: seq % 3 === 0 ? 'shipped' : 'placed',
        customer: customers[Math.floor(Math.random() * customers.length)] ?? 'c1',
        seq,
      },
    }));
    // A gift whose recipient is missing: its ordering key cannot be rendered.
    await produce(topic, [...records, { value: { type: 'gift', customer: 'c1', seq: EVENTS } }]);

    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === EVENTS + 1, {
      timeoutMs: 30_000,
      what: `the watermark to reach ${EVENTS + 1}`,
    });

    const sent = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(sent.every((r) => r.status === 200)).toBe(true);
    const subjects = sent.map((r) => (r.body as { subject: string }).subject.split(' '));
    expect(subjects.map(([, seq]) => Number(seq)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: EVENTS }, (_, i) => i),
    );
    for (const customer of customers) {
      const order = subjects.filter(([c]) => c === customer).map(([, seq, what]) => `${seq} ${what}`);
      expect(order).toEqual(
        records.flatMap((r, seq) => (r.value.customer === customer ? [`${seq} ${r.value.type}`] : [])),
      );
    }
    expect(simulator.maxConcurrentApiCalls).toBeGreaterThan(1);
    expect(simulator.maxConcurrentApiCalls).toBeLessThanOrEqual(6);

    const [dead] = await readTopic(`${topic}.dlq`, 1);
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.code]?.toString()).toBe('TEMPLATE_VARIABLE_MISSING');
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.rule]?.toString()).toBe('gift-note');
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.message]?.toString()).toContain('orderingKey');
  });
});
