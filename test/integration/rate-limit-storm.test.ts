import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, type InProcessBridge, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { expectEachOnce, orderEmailRules, orderEvents, recordCount } from '../support/deliveries.js';
import { committedOffsets, produce, uniqueName, waitFor, createTopic } from '../support/kafka.js';

const EVENTS = 40;
const PARTITIONS = 4;
const LIMIT = 10;
const WINDOW_MS = 1_000;

describe('a 429 storm: Genesys allows fewer calls than the bridge would make', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    // The simulator enforces a per-token limit the bridge is not told about: only its 429s can slow it down.
    simulator = await GenesysSimulator.start({
      faults: { perTokenLimit: LIMIT, orgEmailLimit: 0, rateWindowMs: WINDOW_MS },
    });
    await createTopic(topic, PARTITIONS);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: await orderEmailRules(topic),
      ...simulatorEnv(simulator),
      GENESYS_CLIENT_RATE_LIMIT: '1000000',
      GENESYS_EMAIL_ORG_RATE_LIMIT: '1000000',
      GENESYS_RATE_WINDOW_MS: '1000',
      DELIVERY_RETRY_BASE_DELAY_MS: '50',
      DELIVERY_RETRY_MAX_DELAY_MS: '500',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('slows to the budget, honours each Retry-After for every call, and sends every event exactly once', async () => {
    await produce(topic, orderEvents(EVENTS, PARTITIONS));
    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === EVENTS;
      },
      { timeoutMs: 40_000, what: `all ${EVENTS} offsets committed` },
    );

    expect(expectEachOnce(simulator, EVENTS)).toEqual([]);
    expect(await recordCount(`${topic}.dlq`)).toBe(0);

    const calls = simulator.received(AGENTLESS_EMAIL_PATH);
    const limited = calls.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(simulator.stats().maxCallsPerTokenInWindow).toBeLessThanOrEqual(LIMIT);

    // After a 429 told the client to wait N seconds, none of its calls arrives inside that pause: the Retry-After
    // holds for every call of the OAuth client, not only the one that got it. (A call already on the wire when the
    // 429 was answered may still land just after it, hence the margin at the start.)
    const MARGIN_MS = 200;
    for (const answer of limited) {
      const at = Date.parse(answer.receivedAt);
      const retryAfterMs = Number(/\[(\d+)\]/.exec(JSON.stringify(answer.response))?.[1]) * 1000;
      const inside = calls.filter((r) => {
        const t = Date.parse(r.receivedAt);
        return t > at + MARGIN_MS && t < at + retryAfterMs - MARGIN_MS;
      });
      expect(inside.map((r) => r.seq)).toEqual([]);
    }

    // The wait is observable: the delivery log says how long each waited for its budget or a Retry-After.
    const sent = running.logs.records().filter((r) => r['msg'] === 'delivery' && r['outcome'] === 'sent');
    expect(sent).toHaveLength(EVENTS);
    expect(sent.some((r) => Number(r['rateLimitWaitMs']) > 0)).toBe(true);
    // Every attempt's correlation id is kept: a retried delivery lists more than one.
    const retried = sent.filter((r) => Number(r['attempts']) > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const r of retried) {
      expect((r['correlationIds'] as string[]).length).toBe(Number(r['attempts']));
    }
  });
});
