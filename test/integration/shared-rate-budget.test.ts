import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, type ChildBridge, kafkaEnv } from '../support/bridge.js';
import { expectEachOnce, orderEmailRules, orderEvents } from '../support/deliveries.js';
import { committedOffsets, produce, uniqueName, waitFor, createTopic } from '../support/kafka.js';

const EVENTS = 90;
const PARTITIONS = 4;
const ORG_LIMIT = 30;
const WINDOW_MS = 2_000;
const CLIENTS = [
  { id: 'replica-a', secret: 'secret-a' },
  { id: 'replica-b', secret: 'secret-b' },
];

describe('two bridge processes share the organisation-wide email budget through Redis', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let children: ChildBridge[] = [];

  beforeAll(async () => {
    // The organisation's budget is counted by the simulator across both OAuth clients' tokens.
    simulator = await GenesysSimulator.start({
      clients: CLIENTS,
      faults: { perTokenLimit: 0, orgEmailLimit: ORG_LIMIT, rateWindowMs: WINDOW_MS },
    });
    await createTopic(topic, PARTITIONS);
    const rulesFile = await orderEmailRules(topic);
    const redisPrefix = `${uniqueName('geb-test')}:`;
    children = CLIENTS.map((client) =>
      spawnBridge({
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        RULES_FILE: rulesFile,
        GENESYS_API_URL: simulator.url,
        GENESYS_LOGIN_URL: simulator.url,
        GENESYS_CLIENT_ID: client.id,
        GENESYS_CLIENT_SECRET: client.secret,
        GENESYS_CLIENT_RATE_LIMIT: '1000000',
        GENESYS_EMAIL_ORG_RATE_LIMIT: String(ORG_LIMIT),
        GENESYS_RATE_WINDOW_MS: String(WINDOW_MS),
        REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
        REDIS_KEY_PREFIX: redisPrefix,
      }),
    );
    // Produce once both are in the group, so that both get partitions and send.
    for (const child of children) {
      await waitFor(() => child.output().includes('Redis connected'), {
        timeoutMs: 30_000,
        what: 'the bridge to connect to Redis',
      });
    }
    await waitFor(() => children.every((c) => c.output().includes('joined consumer group')), {
      timeoutMs: 30_000,
      what: 'both bridges to join the group',
    });
    await waitFor(() => children.every((c) => /"assignment":\{"[^"]+":\[\d/.test(c.output())), {
      timeoutMs: 30_000,
      what: 'both bridges to get partitions',
    });
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await simulator?.close();
  });

  it('stays within the budget together: no 429, at most the limit in any window, each event once', async () => {
    await produce(topic, orderEvents(EVENTS, PARTITIONS));
    await waitFor(
      async () => {
        const offsets = await committedOffsets(groupId, topic);
        return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === EVENTS;
      },
      { timeoutMs: 45_000, what: `all ${EVENTS} offsets committed` },
    );

    expect(expectEachOnce(simulator, EVENTS)).toEqual([]);
    const stats = simulator.stats();
    // Both replicas sent: the budget was shared, not used by one of them alone.
    for (const client of CLIENTS) expect(stats.acceptedByClient[client.id] ?? 0).toBeGreaterThan(0);
    expect(stats.maxOrgEmailsInWindow).toBeLessThanOrEqual(ORG_LIMIT);
    expect(stats.requests[AGENTLESS_EMAIL_PATH]?.['429']).toBeUndefined();
    // The budget was binding (each replica alone would have sent faster), and the waits are logged.
    expect(children.some((c) => /"rateLimitWaitMs":[1-9]/.test(c.output()))).toBe(true);
  });
});
