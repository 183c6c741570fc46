import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';
import { RegistryProducer } from '../support/registry-producer.js';
import { ORDER_AVRO } from '../support/schemas.js';

// PasswordResetRequested is the file's second message type (message indexes [1]), and uses a type from an import
// that is registered under its own subject (a schema reference).
const PROTO = `
syntax = "proto3";
package accounts.v1;
import "accounts/person.proto";

message AccountOpened { string account_id = 1; }
message PasswordResetRequested {
  string account_id = 1;
  accounts.common.Person person = 2;
}
`;
const PERSON_PROTO = `
syntax = "proto3";
package accounts.common;

message Person {
  string email = 1;
  string first_name = 2;
}
`;
const MONEY_JSON_ID = 'https://shop.example/schemas/money.json';

describe('Avro, JSON Schema and Protobuf events through a real schema registry (Apicurio; real broker, simulator)', () => {
  const avroTopic = uniqueName('shop.orders.avro');
  const jsonTopic = uniqueName('shop.returns.json');
  const protoTopic = uniqueName('accounts.proto');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  const registryUrl = inject('schemaRegistryUrl');
  let running: InProcessBridge;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await Promise.all([createTopic(avroTopic), createTopic(jsonTopic), createTopic(protoTopic)]);
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: avro-order-shipped
    topics: [${avroTopic}]
    match: { note: [gift] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}", name: "{{ customer.name }}" }
        subject: "Order {{ orderId }} shipped {{ shippedAt | slice: 0, 10 }}"
        text: "Total {{ total }}, arriving {{ deliveryDate }}, tracking {{ trackingId }}."
  - name: json-return-received
    topics: [${jsonTopic}]
    match: { kind: [ReturnReceived] }
    action:
      agentlessEmail:
        from: { email: returns@shop.example }
        to: { email: "{{ email }}" }
        subject: "Return {{ returnId }} received"
        text: "We refund {{ refund.amount }}."
  - name: proto-password-reset
    topics: [${protoTopic}]
    action:
      agentlessEmail:
        from: { email: security@shop.example }
        to: { email: "{{ person.email }}", name: "{{ person.first_name }}" }
        subject: "Reset your password"
        text: "Account {{ account_id }}"
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      SCHEMA_REGISTRY_URL: registryUrl,
      PLAIN_JSON_TOPICS: 'none',
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('decodes each format, matches and sends the expected body', async () => {
    const producer = new RegistryProducer(registryUrl);
    // Referenced schemas get subjects named after this file's unique topics: every file of the run shares the registry.
    const money = await producer.registerReferenced(
      MONEY_JSON_ID,
      `${jsonTopic}-money`,
      'JSON',
      JSON.stringify({
        $schema: 'http://json-schema.org/draft-07/schema#',
        $id: MONEY_JSON_ID,
        type: 'object',
        properties: { amount: { type: 'number' }, currency: { type: 'string' } },
        required: ['amount'],
      }),
    );
    const person = await producer.registerReferenced(
      'accounts/person.proto',
      `${protoTopic}-person`,
      'PROTOBUF',
      PERSON_PROTO,
    );
    await produce(avroTopic, [
      {
        key: 'o-1',
        value: await producer.avro(avroTopic, ORDER_AVRO, {
          orderId: 'A-7',
          shippedAt: Date.UTC(2026, 10, 24, 9, 30),
          deliveryDate: 20_600,
          total: Buffer.from([0x30, 0x39]), // 12345 unscaled, scale 2
          trackingId: '0b5d6b7e-3c1f-4f5e-9a51-2f4d3c2b1a00',
          note: 'gift',
          customer: { email: 'ada@example.com', name: 'Ada' },
        }),
      },
    ]);
    await produce(jsonTopic, [
      {
        key: 'r-1',
        value: await producer.json(
          jsonTopic,
          {
            $schema: 'http://json-schema.org/draft-07/schema#',
            type: 'object',
            properties: {
              kind: { type: 'string' },
              returnId: { type: 'string' },
              email: { type: 'string' },
              refund: { $ref: MONEY_JSON_ID },
            },
            required: ['kind', 'returnId', 'email', 'refund'],
          },
          { kind: 'ReturnReceived', returnId: 'R-3', email: 'bob@example.com', refund: { amount: 19.99 } },
          [money],
        ),
      },
    ]);
    await produce(protoTopic, [
      {
        key: 'acc-1',
        value: await producer.protobuf(
          protoTopic,
          PROTO,
          'accounts.v1.PasswordResetRequested',
          [1],
          {
            account_id: 'ACC-9',
            person: { email: 'cy@example.com', first_name: 'Cy' },
          },
          [person],
        ),
      },
    ]);

    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 3, {
      what: 'three emails at the simulator',
    });
    const bodies = simulator.received(AGENTLESS_EMAIL_PATH).map((r) => r.body);
    expect(bodies).toHaveLength(3);
    expect(bodies).toContainEqual({
      senderType: 'Outbound',
      fromAddress: { email: 'orders@shop.example' },
      toAddresses: [{ email: 'ada@example.com', name: 'Ada' }],
      subject: 'Order A-7 shipped 2026-11-24',
      textBody: 'Total 123.45, arriving 2026-05-27, tracking 0b5d6b7e-3c1f-4f5e-9a51-2f4d3c2b1a00.',
    });
    expect(bodies).toContainEqual({
      senderType: 'Outbound',
      fromAddress: { email: 'returns@shop.example' },
      toAddresses: [{ email: 'bob@example.com' }],
      subject: 'Return R-3 received',
      textBody: 'We refund 19.99.',
    });
    expect(bodies).toContainEqual({
      senderType: 'Outbound',
      fromAddress: { email: 'security@shop.example' },
      toAddresses: [{ email: 'cy@example.com', name: 'Cy' }],
      subject: 'Reset your password',
      textBody: 'Account ACC-9',
    });
    for (const topic of [avroTopic, jsonTopic, protoTopic]) {
      await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 1, {
        what: `the commit on ${topic}`,
      });
    }
  });
});
