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

const PER_PARTITION = 50;

describe('a second bridge joins the group mid-run (two partitions, 100 ms simulated latency)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  const bridges: InProcessBridge[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ latencyMs: 100 });
    await createTopic(topic, 2);
    env = {
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: await writeEmailRule({
        name: 'order-email',
        topic,
        to: '{{ customer }}@example.com',
        subject: '{{ partition }} {{ seq }}',
        text: 'Event {{ seq }}.',
      }),
      ...simulatorEnv(simulator),
      PARTITION_MAX_IN_FLIGHT: '1',
      KAFKA_COMMIT_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
    };
    const customers = ['c1', 'c2', 'c3', 'c4'];
    await produce(
      topic,
      [0, 1].flatMap((partition) =>
        Array.from({ length: PER_PARTITION }, (_, seq) => {
          const customer = customers[seq % customers.length] ?? 'c1';
          return { partition, key: customer, value: { customer, partition, seq } };
        }),
      ),
    );
  });

  afterAll(async () => {
    for (const running of bridges) await running.bridge.close();
    await simulator?.close();
  });

  it('loses nothing, shares the work, and commits every partition to its end', async () => {
    bridges.push(await startTestBridge(env));
    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 10, { what: '10 sends' });
    bridges.push(await startTestBridge(env));

    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return offsets.get(0) === PER_PARTITION && offsets.get(1) === PER_PARTITION;
      },
      { timeoutMs: 40_000, what: 'both partitions committed to their end' },
    );
    const sent = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .map((r) => (r.body as { subject: string }).subject.split(' ').map(Number) as [number, number]);
    for (const partition of [0, 1]) {
      const seqs = new Set(sent.filter(([p]) => p === partition).map(([, seq]) => seq));
      expect(seqs.size).toBe(PER_PARTITION);
    }
    // The partition that moved was revoked from the first member, and the second delivered from it.
    const sentBy = (i: number) =>
      bridges[i]?.logs.records().filter((r) => r['msg'] === 'delivery' && r['outcome'] === 'sent').length ??
      0;
    expect(bridges[0]?.logs.records().some((r) => r['msg'] === 'partition revoked')).toBe(true);
    expect(sentBy(1)).toBeGreaterThan(0);
    expect(sentBy(0) + sentBy(1)).toBeGreaterThanOrEqual(2 * PER_PARTITION);
  });
});
