import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  UNLIMITED_GENESYS_FAULTS,
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

describe('the consumer commits as soon as it has caught up (real broker, simulator)', () => {
  const topic = uniqueName('commit.orders');
  const groupId = uniqueName('geb-commit');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic, 2);
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: shipped-email
    topics: [${topic}]
    match: { type: [OrderShipped] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        text: "Shipped."
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      // Ten minutes: far longer than the test may wait, so only the catch-up commit can pass it.
      KAFKA_COMMIT_INTERVAL_MS: '600000',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('commits both partitions to their end once every event is final, without waiting for the commit interval', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({
      partition: i % 2,
      key: `k${i}`,
      value: i % 4 === 0 ? { type: 'OrderShipped', email: `c${i}@example.com` } : { type: 'Other' },
    }));
    await produce(topic, records);
    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return offsets.get(0) === 20 && offsets.get(1) === 20;
      },
      { timeoutMs: 20_000, what: 'both partitions to be committed to offset 20' },
    );
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(10);
  });
});

describe('a partition whose queue is full (real broker, slow simulator)', () => {
  const topic = uniqueName('full.orders');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    // Genesys' own budgets lifted: this test is about fetching, not rate limits.
    simulator = await GenesysSimulator.start({
      faults: { latencyMs: 20, ...UNLIMITED_GENESYS_FAULTS },
    });
    await createTopic(topic, 1);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: uniqueName('geb-full'),
      RULES_FILE: await writeRulesFile(`
version: 1
rules:
  - name: shipped-email
    topics: [${topic}]
    action:
      agentlessEmail: { from: { email: orders@shop.example }, to: { email: "{{ email }}" }, text: "Shipped." }
`),
      ...simulatorEnv(simulator),
      // About 200 deliveries a second: the queue of 100 takes some 250 ms to drain to half.
      PARTITION_MAX_QUEUED: '100',
      PARTITION_MAX_IN_FLIGHT: '4',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('is fetched again only once half its queue is free, not each time one event finishes', async () => {
    const total = 600;
    await produce(
      topic,
      Array.from({ length: total }, (_, i) => ({ key: `k${i}`, value: { email: `c${i}@example.com` } })),
    );
    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length === total, {
      timeoutMs: 30_000,
      what: `all ${total} emails`,
    });
    // Each cut leaves the rest of a fetch to be fetched and decoded again. Measured: 5 cuts; when the partition was
    // fetched again as soon as one event finished, 61.
    const cuts = running.logs.records().filter((r) => String(r['msg']).startsWith('batch cut short')).length;
    expect(cuts).toBeGreaterThan(0);
    expect(cuts).toBeLessThanOrEqual(20);
  });
});
