import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, type InProcessBridge, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { expectEachOnce, orderEmailRules, orderEvents, recordCount } from '../support/deliveries.js';
import { committedOffsets, produce, uniqueName, waitFor, createTopic } from '../support/kafka.js';

const EVENTS = 6;
const PARTITIONS = 2;

describe('the token endpoint unreachable past the retry bound', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ faults: { tokenEndpointStatus: 503 } });
    await createTopic(topic, PARTITIONS);
    running = await startTestBridge(
      {
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        RULES_FILE: await orderEmailRules(topic),
        ...simulatorEnv(simulator),
      },
      { baseDelayMs: 50, maxDelayMs: 200, maxAttempts: 3, maxAgeMs: 60_000, pauseProbeMs: 500 },
    );
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('pauses as systemic (never dead-letters), and delivers everything once the endpoint is back', async () => {
    await produce(topic, orderEvents(EVENTS, PARTITIONS));
    await waitFor(() => running.bridge.health.paused !== undefined, { what: 'delivery to pause' });
    expect(running.bridge.health.paused?.code).toBe('TOKEN_UNAVAILABLE');
    expect(running.bridge.health.paused?.message).toContain('retry bound');
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(0);
    expect(await recordCount(`${topic}.dlq`)).toBe(0);

    simulator.setFaults({ tokenEndpointStatus: 0 });
    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === EVENTS;
      },
      { timeoutMs: 20_000, what: `all ${EVENTS} offsets committed after recovery` },
    );
    expect(running.bridge.health.paused).toBeUndefined();
    expect(expectEachOnce(simulator, EVENTS)).toEqual([]);
    expect(await recordCount(`${topic}.dlq`)).toBe(0);
  });
});
