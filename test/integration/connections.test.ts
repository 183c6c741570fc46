import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, writeRulesFile, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

const EU_CLIENT = { id: 'eu-client', secret: 'eu-secret-from-env' };

describe('named connections (real broker, two simulators)', () => {
  const topic = uniqueName('conn.orders');
  let home: GenesysSimulator;
  let eu: GenesysSimulator;

  beforeAll(async () => {
    home = await GenesysSimulator.start();
    eu = await GenesysSimulator.start({ clients: [EU_CLIENT] });
    await createTopic(topic);
    // The rules file names these variables; the values never appear in it.
    process.env['GEB_RULES_TEST_EU_CLIENT_ID'] = EU_CLIENT.id;
    process.env['GEB_RULES_TEST_EU_CLIENT_SECRET'] = EU_CLIENT.secret;
  });

  afterAll(async () => {
    delete process.env['GEB_RULES_TEST_EU_CLIENT_ID'];
    delete process.env['GEB_RULES_TEST_EU_CLIENT_SECRET'];
    await home?.close();
    await eu?.close();
  });

  it('sends each rule through its own connection, and rules without one through GENESYS_*', async () => {
    const rulesFile = await writeRulesFile(`
version: 1
connections:
  eu:
    apiUrl: ${eu.url}
    loginUrl: ${eu.url}
    clientId: "\${GEB_RULES_TEST_EU_CLIENT_ID}"
    clientSecret: "\${GEB_RULES_TEST_EU_CLIENT_SECRET}"
rules:
  - name: home-email
    topics: [${topic}]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "home {{ orderId }}"
        text: "Thanks."
  - name: eu-email
    topics: [${topic}]
    connection: eu
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "eu {{ orderId }}"
        text: "Thanks."
`);
    await produce(topic, [{ key: 'order-1', value: { orderId: 'A-1', email: 'ada@example.com' } }]);
    const groupId = uniqueName('geb-conn');
    const running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(home),
    });
    try {
      await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 1, {
        what: 'the event to be committed',
      });
    } finally {
      await running.bridge.close();
    }
    const sent = (simulator: GenesysSimulator) =>
      simulator
        .received(AGENTLESS_EMAIL_PATH)
        .map((r) => [r.clientId, r.status, (r.body as { subject: string }).subject]);
    expect(sent(home)).toEqual([[DEFAULT_SIMULATOR_CLIENT.id, 200, 'home A-1']]);
    expect(sent(eu)).toEqual([[EU_CLIENT.id, 200, 'eu A-1']]);
    expect(running.logs.text).not.toContain(EU_CLIENT.secret);
  });
});
