import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('events decided before decoding (real broker, simulator over HTTP)', () => {
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
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "Order {{ orderId }} has shipped"
        text: "On its way."
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

  it('settles what cannot match undecoded, still sends a match written with escapes, and dead-letters what is not JSON', async () => {
    await produce(topic, [
      { key: 'o-1', value: { type: 'OrderCancelled', orderId: 'A-1', email: 'ada@example.com' } },
      // "OrderShipped" with its O escaped: its bytes do not hold the literal, and it must be sent all the same.
      { key: 'o-2', value: '{"type":"\\u004FrderShipped","orderId":"A-2","email":"bob@example.com"}' },
      { key: 'o-3', value: 'not json' },
      { key: 'o-4', value: { type: 'OrderShipped', orderId: 'A-4', email: 'cy@example.com' } },
    ]);
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 4, {
      what: 'the committed offset to move past the four events',
    });
    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 2, { what: 'two emails' });

    const subjects = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .map((r) => (r.body as { subject: string }).subject)
      .sort();
    expect(subjects).toEqual(['Order A-2 has shipped', 'Order A-4 has shipped']);

    // The skipped event is logged and counted as any event that matches no rule.
    const unmatched = running.logs.records().filter((r) => r['msg'] === 'event matched no rule');
    expect(unmatched.map((r) => (r['event'] as { offset: string }).offset)).toEqual(['0']);
    const consumed = (await running.bridge.metrics.eventsConsumed.get()).values;
    expect(consumed.find((v) => v.labels['topic'] === topic)?.value).toBe(4);
    // What is not JSON still reaches the decoder, which dead-letters it.
    expect(
      running.logs
        .records()
        .filter((r) => r['msg'] === 'delivery' && r['outcome'] === 'dead-lettered')
        .map((r) => r['code']),
    ).toEqual(['DECODE_FAILED']);
  });
});
