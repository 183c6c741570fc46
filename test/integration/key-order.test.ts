import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
  writeEmailRule,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

const EVENTS = 60;

describe('one partition, random keys, 100 ms simulated latency', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ latencyMs: 100 });
    await createTopic(topic, 1);
    const rulesFile = await writeEmailRule({
      name: 'order-email',
      topic,
      to: '{{ customer }}@example.com',
      subject: '{{ customer }} {{ seq }}',
      text: 'Event {{ seq }}.',
    });
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      PARTITION_MAX_IN_FLIGHT: '6',
      // Smaller than the topic: fetching must pause at the bound and the rest be fetched again later.
      PARTITION_MAX_QUEUED: '20',
      KAFKA_COMMIT_INTERVAL_MS: '200',
      LOG_LEVEL: 'debug',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('sends the events of each key in offset order while several calls are in flight at once, pausing fetching at the queue bound', async () => {
    const customers = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'];
    const records = Array.from({ length: EVENTS }, (_, seq) => {
      const customer = customers[Math.floor(Math.random() * customers.length)] ?? 'c1';
      return { key: customer, value: { customer, seq } };
    });
    await produce(topic, records);

    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === EVENTS, {
      timeoutMs: 30_000,
      what: `the watermark to reach ${EVENTS}`,
    });

    const sent = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(sent.every((r) => r.status === 200)).toBe(true);
    const subjects = sent.map((r) => (r.body as { subject: string }).subject.split(' '));
    // Every event exactly once…
    expect(subjects.map(([, seq]) => Number(seq)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: EVENTS }, (_, i) => i),
    );
    // …each key's events in the order they were produced (offset order on one partition)…
    for (const customer of customers) {
      const order = subjects.filter(([c]) => c === customer).map(([, seq]) => Number(seq));
      expect(order).toEqual(records.flatMap((r, seq) => (r.key === customer ? [seq] : [])));
    }
    // …and more than one call in flight at a time, never more than the partition's bound.
    expect(simulator.maxConcurrentApiCalls).toBeGreaterThan(1);
    expect(simulator.maxConcurrentApiCalls).toBeLessThanOrEqual(6);
    const messages = running.logs.records().map((r) => r['msg']);
    expect(messages).toContain('fetching paused');
    expect(messages).toContain('fetching resumed');
  });
});
