import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  UNLIMITED_GENESYS_FAULTS,
  spawnBridge,
  writeRulesFile,
  type ChildBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';
import { ledgerRecords } from '../support/ledger.js';
import { dropSchema, postgresUrl, uniqueSchema } from '../support/postgres.js';

const PARTITIONS = 4;
const BATCHES = 12;
const PER_BATCH = 100;
const EVENTS = BATCHES * PER_BATCH;
const RULE = 'rebalance-email';

describe('rebalance: two bridges in one group on a shared PostgreSQL ledger, one joining and one leaving mid-run', () => {
  const topic = uniqueName('rebalance.orders');
  const groupId = uniqueName('geb-rebalance');
  const schema = uniqueSchema('geb_rebalance');
  const ledgerUrl = postgresUrl(schema);
  let simulator: GenesysSimulator;
  let rulesFile: string;
  const bridges: ChildBridge[] = [];

  beforeAll(async () => {
    // Over a thousand sends in seconds: Genesys' budgets (the simulator's default) are not what this test is about.
    simulator = await GenesysSimulator.start({
      faults: UNLIMITED_GENESYS_FAULTS,
    });
    await createTopic(topic, PARTITIONS);
    rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: ${RULE}
    topics: [${topic}]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "event {{ id }}"
        text: "Hello, event {{ id }}."
`);
  });

  afterAll(async () => {
    await Promise.all(bridges.map((b) => b.stop('SIGKILL')));
    await simulator?.close();
    await dropSchema(schema);
  });

  const start = (name: string) => {
    const bridge = spawnBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      KAFKA_CLIENT_ID: name,
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      LEDGER_URL: ledgerUrl,
      LOG_LEVEL: 'info',
    });
    bridges.push(bridge);
    return bridge;
  };
  const sentCount = () => simulator.received(AGENTLESS_EMAIL_PATH).length;
  const joined = (bridge: ChildBridge) => () => bridge.output().includes('joined consumer group');

  it('sends every event exactly once', { timeout: 120_000 }, async () => {
    let produced = 0;
    const produceBatch = async () => {
      const from = produced;
      produced += PER_BATCH;
      await produce(
        topic,
        Array.from({ length: PER_BATCH }, (_, i) => ({
          key: `evt-${from + i}`,
          value: { id: `evt-${from + i}`, email: `customer${from + i}@example.com` },
        })),
      );
    };

    const first = start('bridge-a');
    await waitFor(joined(first), { timeoutMs: 30_000, what: 'bridge a to join' });
    for (let i = 0; i < 4; i++) await produceBatch();
    await waitFor(() => sentCount() >= 150, { timeoutMs: 30_000, intervalMs: 10, what: '150 sends by a' });

    // b joins while a is busy: the group rebalances under load.
    const second = start('bridge-b');
    for (let i = 0; i < 4; i++) await produceBatch();
    await waitFor(joined(second), { timeoutMs: 30_000, what: 'bridge b to join' });
    await waitFor(() => sentCount() >= 500, { timeoutMs: 30_000, intervalMs: 10, what: '500 sends' });

    // a leaves (SIGTERM: a clean stop) while events keep coming; b takes every partition.
    const leaving = first.stop('SIGTERM');
    while (produced < EVENTS) await produceBatch();
    expect(await leaving).toBe(0);

    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        let committed = 0;
        for (let p = 0; p < PARTITIONS; p++) committed += Math.max(0, offsets.get(p) ?? 0);
        return committed >= EVENTS;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'every offset to be committed' },
    );
    expect(await second.stop('SIGTERM')).toBe(0);

    const received = new Map<string, number>();
    for (const request of simulator.received(AGENTLESS_EMAIL_PATH)) {
      const id = /^event (evt-\d+)$/.exec((request.body as { subject: string }).subject)?.[1] ?? '?';
      received.set(id, (received.get(id) ?? 0) + 1);
    }
    expect([...received].filter(([, n]) => n !== 1)).toEqual([]);
    expect(received.size).toBe(EVENTS);

    const records = await ledgerRecords(ledgerUrl, RULE);
    expect(records).toHaveLength(EVENTS);
    expect(records.filter((r) => r.state !== 'sent')).toEqual([]);
    // Both bridges delivered: the rebalance really moved partitions between them.
    const owners = new Set(records.map((r) => r.owner?.split('/')[1]));
    expect(owners.size).toBe(2);
  });
});
