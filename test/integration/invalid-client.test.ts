import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, writeRulesFile, type ChildBridge } from '../support/bridge.js';
import { brokers, committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

describe('a wrong client secret (geb run as a child process)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  const wrongSecret = 'Wr0ngSecret-that-must-never-be-printed';
  let simulator: GenesysSimulator;
  let child: ChildBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: order-shipped-email
    topics: [${topic}]
    match: { type: [OrderShipped] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "Order {{ orderId }}"
        text: "Shipped."
`);
    await produce(topic, [
      { key: 'o-1', value: { type: 'OrderShipped', orderId: 'A-1', customer: { email: 'ada@example.com' } } },
    ]);
    child = spawnBridge({
      KAFKA_BROKERS: brokers().join(','),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      GENESYS_API_URL: simulator.url,
      GENESYS_LOGIN_URL: simulator.url,
      GENESYS_CLIENT_ID: DEFAULT_SIMULATOR_CLIENT.id,
      GENESYS_CLIENT_SECRET: wrongSecret,
    });
  });

  afterAll(async () => {
    await child?.stop('SIGKILL');
    await simulator?.close();
  });

  it('reports invalid_client, sends and commits nothing, never prints the secret, and still stops cleanly', async () => {
    await waitFor(() => child.output().includes('invalid_client'), { what: 'invalid_client in the output' });
    // The pipeline reached the event and paused on it (rather than only the start-up check failing).
    await waitFor(() => child.output().includes('delivery paused'), { what: 'the delivery to pause' });

    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(0);
    expect(simulator.received('/oauth/token').every((r) => r.status === 401)).toBe(true);
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(-1);

    const output = child.output();
    expect(output).toMatch(/GENESYS_INVALID_CLIENT/);
    expect(output).toMatch(/check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET/);
    expect(output).not.toContain(wrongSecret);
    expect(output).not.toContain(
      Buffer.from(`${DEFAULT_SIMULATOR_CLIENT.id}:${wrongSecret}`).toString('base64'),
    );
    expect(output).not.toContain('ada@example.com');

    expect(await child.stop('SIGTERM')).toBe(0);
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(-1);
  });
});
