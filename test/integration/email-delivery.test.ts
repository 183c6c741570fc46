import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_HEADERS } from '../../src/kafka/dead-letter.js';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';

describe('one Kafka event becomes one agentless email (real broker, simulator over HTTP)', () => {
  const topic = uniqueName('shop.orders');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

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
        from: { email: orders@shop.example, name: Shop }
        to: { email: "{{ customer.email }}", name: "{{ customer.name }}" }
        subject: "Order {{ orderId }} has shipped"
        text: "Hello {{ customer.name }}, your order {{ orderId }} is on its way."
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('sends exactly the rendered request, skips what matches no rule, dead-letters what cannot render, and commits past all', async () => {
    await produce(topic, [
      {
        key: 'order-1001',
        value: {
          type: 'OrderShipped',
          orderId: 'A-1001',
          customer: { email: 'ada@example.com', name: 'Ada' },
        },
        headers: { source: 'shop' },
      },
      { key: 'order-1002', value: { type: 'OrderCancelled', orderId: 'A-1002' } },
      {
        key: 'order-1003',
        value: { type: 'OrderShipped', orderId: 'A-1003', customer: { name: 'No Address' } },
      },
    ]);

    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 3, {
      what: 'the committed offset to move past the three events',
    });

    const emails = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(emails).toHaveLength(1);
    expect(emails[0]?.status).toBe(200);
    expect(emails[0]?.body).toEqual({
      senderType: 'Outbound',
      fromAddress: { email: 'orders@shop.example', name: 'Shop' },
      toAddresses: [{ email: 'ada@example.com', name: 'Ada' }],
      subject: 'Order A-1001 has shipped',
      textBody: 'Hello Ada, your order A-1001 is on its way.',
    });

    // The delivery is logged with Genesys' ids and without the address.
    const sent = running.logs.records().filter((r) => r['msg'] === 'delivery' && r['outcome'] === 'sent');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.['conversationId']).toBe(
      (emails[0]?.response as { conversationId: string }).conversationId,
    );
    expect(sent[0]?.['correlationId']).toBe(emails[0]?.correlationId);
    expect(running.logs.text).not.toContain('ada@example.com');

    // The event whose template variable is missing went to the dead-letter topic, bytes and headers intact.
    const [dead] = await readTopic(`${topic}.dlq`, 1);
    expect(dead?.key?.toString()).toBe('order-1003');
    expect(JSON.parse(dead?.value?.toString() ?? '')).toEqual({
      type: 'OrderShipped',
      orderId: 'A-1003',
      customer: { name: 'No Address' },
    });
    const header = (name: string) => dead?.headers?.[name]?.toString();
    expect(header(DEAD_LETTER_HEADERS.code)).toBe('TEMPLATE_VARIABLE_MISSING');
    expect(header(DEAD_LETTER_HEADERS.message)).toContain('customer.email');
    expect(header(DEAD_LETTER_HEADERS.rule)).toBe('order-shipped-email');
    expect(header(DEAD_LETTER_HEADERS.stage)).toBe('render');
    expect(header(DEAD_LETTER_HEADERS.topic)).toBe(topic);
    expect(header(DEAD_LETTER_HEADERS.offset)).toBe('2');
  });
});
