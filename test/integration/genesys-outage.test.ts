import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, type InProcessBridge, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { expectEachOnce, orderEmailRules, orderEvents, recordCount } from '../support/deliveries.js';
import { committedOffsets, produce, uniqueName, waitFor, createTopic } from '../support/kafka.js';

const EVENTS = 20;
const PARTITIONS = 4;
const OUTAGE_MS = 30_000;

describe('30 seconds of 503 from Genesys', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ faults: { failureRates: { '503': 1 } } });
    await createTopic(topic, PARTITIONS);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: await orderEmailRules(topic),
      ...simulatorEnv(simulator),
      GENESYS_CLIENT_RATE_LIMIT: '1000000',
      GENESYS_EMAIL_ORG_RATE_LIMIT: '1000000',
      // Short backoff so that recovery shows within seconds; the bounds are the defaults' order of magnitude.
      DELIVERY_RETRY_BASE_DELAY_MS: '200',
      DELIVERY_RETRY_MAX_DELAY_MS: '2000',
      DELIVERY_RETRY_MAX_ATTEMPTS: '1000',
      DELIVERY_RETRY_MAX_AGE_MS: '120000',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('retries through it, dead-letters nothing, and delivers everything once Genesys is back', async () => {
    await produce(topic, orderEvents(EVENTS, PARTITIONS));
    const outageEnds = Date.now() + OUTAGE_MS;
    await waitFor(() => Date.now() >= outageEnds, { timeoutMs: OUTAGE_MS + 5_000, intervalMs: 500 });

    const during = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(during.filter((r) => r.status === 200)).toHaveLength(0);
    // Retried (more calls than events), with backoff (not a busy loop).
    expect(during.filter((r) => r.status === 503).length).toBeGreaterThan(EVENTS);
    expect(during.length).toBeLessThan(EVENTS * 60);
    expect([...(await committedOffsets(groupId, topic)).values()].every((o) => o <= 0)).toBe(true);
    expect(running.bridge.health.paused).toBeUndefined();

    simulator.setFaults({ failureRates: {} });
    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === EVENTS;
      },
      { timeoutMs: 20_000, what: `all ${EVENTS} offsets committed after recovery` },
    );
    expect(expectEachOnce(simulator, EVENTS)).toEqual([]);
    expect(await recordCount(`${topic}.dlq`)).toBe(0);
  });
});
