import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, type ChildBridge, kafkaEnv, writeEmailRule } from '../support/bridge.js';
import { committedOffsets, createTopic, produce, topicSize, uniqueName, waitFor } from '../support/kafka.js';

describe('a wrong client secret, fixed later (geb run as a child process)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  const wrongSecret = 'Wr0ngSecret-that-must-never-be-printed';
  let simulator: GenesysSimulator;
  let child: ChildBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    await createTopic(`${topic}.dlq`);
    const rulesFile = await writeEmailRule({
      name: 'order-shipped-email',
      topic,
      match: '{ type: [OrderShipped] }',
      to: '{{ customer.email }}',
      subject: 'Order {{ orderId }}',
      text: 'Shipped.',
    });
    await produce(topic, [
      { key: 'o-1', value: { type: 'OrderShipped', orderId: 'A-1', customer: { email: 'ada@example.com' } } },
    ]);
    child = spawnBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      GENESYS_API_URL: simulator.url,
      GENESYS_LOGIN_URL: simulator.url,
      GENESYS_CLIENT_ID: DEFAULT_SIMULATOR_CLIENT.id,
      GENESYS_CLIENT_SECRET: wrongSecret,
      PAUSE_PROBE_INTERVAL_MS: '300',
      KAFKA_COMMIT_INTERVAL_MS: '200',
    });
  });

  afterAll(async () => {
    await child?.stop('SIGKILL');
    await simulator?.close();
  });

  it('reports invalid_client, sends and commits nothing, never prints the secret', async () => {
    await waitFor(() => child.output().includes('invalid_client'), { what: 'invalid_client in the output' });
    // The pipeline reached the event and paused on it (rather than only the start-up check failing).
    await waitFor(() => child.output().includes('delivery paused'), { what: 'the delivery to pause' });

    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(0);
    expect(simulator.received('/oauth/token').every((r) => r.status === 401)).toBe(true);
    // Nothing past the stuck event: either nothing or the stuck event's own offset (where consumption resumes).
    expect((await committedOffsets(groupId, topic)).get(0)).toBeLessThanOrEqual(0);

    const output = child.output();
    expect(output).toMatch(/GENESYS_INVALID_CLIENT/);
    expect(output).toMatch(/check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET/);
    expect(output).not.toContain(wrongSecret);
    expect(output).not.toContain(
      Buffer.from(`${DEFAULT_SIMULATOR_CLIENT.id}:${wrongSecret}`).toString('base64'),
    );
    expect(output).not.toContain('ada@example.com');
  });

  it('pauses: /readyz says why and nothing is dead-lettered; it resumes by itself once the secret is accepted', async () => {
    const adminUrl = /"url":"(http:[^"]+)"[^\n]*"msg":"admin server listening/.exec(child.output())?.[1];
    expect(adminUrl).toBeDefined();
    const ready = await fetch(`${adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, code: 'GENESYS_INVALID_CLIENT' });
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
    // Several probes went by without the event being given up on.
    await waitFor(() => simulator.received('/oauth/token').length >= 3, { what: 'repeated probes' });
    expect(await topicSize(`${topic}.dlq`)).toBe(0);
    expect((await committedOffsets(groupId, topic)).get(0)).toBeLessThanOrEqual(0);

    simulator.setClient({ id: DEFAULT_SIMULATOR_CLIENT.id, secret: wrongSecret });

    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 1, {
      what: 'the event to be sent and committed after the fix',
    });
    expect(simulator.received(AGENTLESS_EMAIL_PATH).map((r) => r.status)).toEqual([200]);
    await waitFor(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, {
      what: '/readyz to be 200',
    });
    expect(await topicSize(`${topic}.dlq`)).toBe(0);

    expect(await child.stop('SIGTERM')).toBe(0);
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(1);
  });
});
