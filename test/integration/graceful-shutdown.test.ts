import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, type ChildBridge, simulatorEnv, kafkaEnv, writeEmailRule } from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

const EVENTS = 120;

describe('SIGTERM mid-run (geb run as a child process, 100 ms simulated latency)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let env: Record<string, string>;
  const children: ChildBridge[] = [];

  const sentSeqs = () =>
    simulator
      .received(AGENTLESS_EMAIL_PATH)
      .filter((r) => r.status === 200)
      .map((r) => Number((r.body as { subject: string }).subject));
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ latencyMs: 100 });
    await createTopic(topic, 1);
    const rulesFile = await writeEmailRule({
      name: 'order-email',
      topic,
      to: '{{ customer }}@example.com',
      subject: '{{ seq }}',
      text: 'Event {{ seq }}.',
    });
    env = {
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      PARTITION_MAX_IN_FLIGHT: '4',
      // Only the commit at shutdown counts: the periodic one must not be what saves the test.
      KAFKA_COMMIT_INTERVAL_MS: '600000',
    };
    const customers = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    await produce(
      topic,
      range(EVENTS).map((seq) => {
        const customer = customers[Math.floor(Math.random() * customers.length)] ?? 'c1';
        return { key: customer, value: { customer, seq } };
      }),
    );
  });

  afterAll(async () => {
    for (const child of children) await child.stop('SIGKILL');
    await simulator?.close();
  });

  it('commits exactly what was sent, and the next run sends the rest and nothing twice', async () => {
    const first = spawnBridge(env);
    children.push(first);
    await waitFor(() => sentSeqs().length >= 10, { timeoutMs: 30_000, what: '10 sends' });
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output()).toContain('"msg":"stopped"');

    const committed = (await committedOffsets(groupId, topic)).get(0) ?? -1;
    expect(committed).toBeGreaterThanOrEqual(10);
    expect(committed).toBeLessThan(EVENTS); // it did stop mid-run
    // On one partition seq = offset: everything below the commit was sent, nothing at or above it.
    expect(sentSeqs().sort((a, b) => a - b)).toEqual(range(committed));

    const second = spawnBridge(env);
    children.push(second);
    await waitFor(() => sentSeqs().length >= EVENTS, { timeoutMs: 30_000, what: 'every event to be sent' });
    expect(await second.stop('SIGTERM')).toBe(0);
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(EVENTS);
    expect(sentSeqs().sort((a, b) => a - b)).toEqual(range(EVENTS));
  });
});

describe('a second signal while deliveries are still running (geb run as a child process)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let child: ChildBridge | undefined;

  beforeAll(async () => {
    // Calls slower than the test: the first SIGTERM must find them still running.
    simulator = await GenesysSimulator.start({ latencyMs: 60_000 });
    await createTopic(topic, 1);
    await produce(topic, [{ key: 'c1', value: { customer: 'c1', seq: 0 } }]);
  });

  afterAll(async () => {
    await child?.stop('SIGKILL');
    await simulator?.close();
  });

  it('exits at once with 130 and commits nothing past the unfinished event', async () => {
    child = spawnBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: await writeEmailRule({
        name: 'order-email',
        topic,
        to: '{{ customer }}@example.com',
        subject: '{{ seq }}',
        text: 'Event {{ seq }}.',
      }),
      ...simulatorEnv(simulator),
      SHUTDOWN_GRACE_MS: '60000',
    });
    await waitFor(() => simulator.maxConcurrentApiCalls >= 1, {
      timeoutMs: 30_000,
      what: 'a call in flight',
    });
    const running = child;
    running.stop('SIGTERM').catch(() => undefined);
    await waitFor(() => running.output().includes('signal received'), {
      what: 'the first signal to be seen',
    });
    expect(await running.stop('SIGINT')).toBe(130);
    expect(running.output()).toContain('second signal: exiting at once');
    expect((await committedOffsets(groupId, topic)).get(0)).toBeLessThanOrEqual(0);
  });
});
