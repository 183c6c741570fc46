import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, type ChildBridge, simulatorEnv, kafkaEnv, writeEmailRule } from '../support/bridge.js';
import { createTopic, uniqueName } from '../support/kafka.js';

/**
 * kafkajs gives up on a consumer for good (CRASH with restart: false) on errors no retry can fix. The broker refuses a
 * session timeout above its group.max.session.timeout.ms (30 min by default) with INVALID_SESSION_TIMEOUT, which
 * kafkajs does not retry: a real crash, caused through configuration rather than by patching kafkajs.
 */
describe('the Kafka consumer crashing for good (real broker)', () => {
  const topic = uniqueName('crash.orders');
  let simulator: GenesysSimulator;
  let bridge: ChildBridge | undefined;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await simulator?.close();
  });

  it('exits with code 70 and says why, instead of living on as a zombie', async () => {
    const rulesFile = await writeEmailRule({ name: 'receipt', topic, to: '{{ email }}', text: 'Thanks.' });
    bridge = spawnBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: uniqueName('geb-crash'),
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      KAFKA_SESSION_TIMEOUT_MS: '2000000',
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
    const code = await Promise.race([bridge.exited, timeout]);
    expect(code, bridge.output()).toBe(70);
    const fatal = bridge
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((r) => r['level'] === 'fatal');
    expect(fatal?.['msg']).toContain('crashed');
    expect(JSON.stringify(fatal?.['err'])).toContain('session timeout');
  });
});
