import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, type InProcessBridge, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { expectEachOnce, orderEmailRules, orderEvents, recordCount } from '../support/deliveries.js';
import { committedOffsets, produce, uniqueName, waitFor, createTopic } from '../support/kafka.js';

const EVENTS = 60;
const PARTITIONS = 4;

describe('a token revoked mid-run', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start({ faults: { latencyMs: 40 } });
    await createTopic(topic, PARTITIONS);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: await orderEmailRules(topic),
      ...simulatorEnv(simulator),
      GENESYS_CLIENT_RATE_LIMIT: '1000000',
      GENESYS_EMAIL_ORG_RATE_LIMIT: '1000000',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('costs one token request, and every event is still sent exactly once', async () => {
    await produce(topic, orderEvents(EVENTS, PARTITIONS));
    const accepted = () => simulator.received(AGENTLESS_EMAIL_PATH).filter((r) => r.status === 200).length;
    await waitFor(() => accepted() >= 10, { intervalMs: 5, what: 'the first sends' });
    const issuedBefore = simulator.tokensIssued;
    simulator.revokeTokens();
    const acceptedAtRevocation = accepted();

    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === EVENTS;
      },
      { timeoutMs: 30_000, what: `all ${EVENTS} offsets committed` },
    );

    expect(acceptedAtRevocation).toBeLessThan(EVENTS);
    expect(simulator.received(AGENTLESS_EMAIL_PATH).filter((r) => r.status === 401).length).toBeGreaterThan(
      0,
    );
    // However many calls were in flight with the revoked token, one new token served them all.
    expect(simulator.tokensIssued).toBe(issuedBefore + 1);
    expect(expectEachOnce(simulator, EVENTS)).toEqual([]);
    expect(await recordCount(`${topic}.dlq`)).toBe(0);
  });
});
