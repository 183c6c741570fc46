import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEAD_LETTER_HEADERS } from '../../src/kafka/dead-letter.js';
import { MAX_EVENT_DEPTH } from '../../src/kafka/decoder.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';

describe('an event nested thousands of levels deep', () => {
  const topic = uniqueName('deep');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('is dead-lettered with a reason naming the depth, and the next event on its partition is delivered', async () => {
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: notice-email
    topics: [${topic}]
    match: { type: [Notice] }
    action:
      agentlessEmail:
        from: { email: notices@shop.example }
        to: { email: "{{ email }}" }
        subject: "{{ subject }}"
        text: "Notice"
`);
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
    });
    // A matching event whose extra field nests 5,000 objects deep (about 60 KB), and 30,000 bare arrays (60 KB).
    const deepObject = `{"type":"Notice","email":"ada@example.com","subject":"deep","x":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`;
    const deepArrays = '['.repeat(30_000) + ']'.repeat(30_000);
    await produce(topic, [
      { key: 'same', value: deepObject },
      { key: 'same', value: deepArrays },
      { key: 'same', value: { type: 'Notice', email: 'bob@example.com', subject: 'after' } },
    ]);

    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 1, {
      timeoutMs: 30_000,
      what: 'the event behind the deep ones to be delivered',
    });
    expect(
      simulator.received(AGENTLESS_EMAIL_PATH).map((r) => (r.body as { subject: string }).subject),
    ).toEqual(['after']);
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 3, {
      what: 'the commit past all three events',
    });

    // Events dead-lettered at decoding have no ordering key: they reach the DLQ in any order.
    const offsetOf = (r: { headers?: Record<string, unknown> }) =>
      Number(String((r.headers?.[DEAD_LETTER_HEADERS.offset] as Buffer | undefined) ?? ''));
    const dead = (await readTopic(`${topic}.dlq`, 2)).sort((a, b) => offsetOf(a) - offsetOf(b));
    expect(dead).toHaveLength(2);
    for (const [i, record] of dead.entries()) {
      const header = (name: string) => record.headers?.[name]?.toString();
      expect(header(DEAD_LETTER_HEADERS.offset)).toBe(String(i));
      expect(header(DEAD_LETTER_HEADERS.code)).toBe('DECODE_FAILED');
      expect(header(DEAD_LETTER_HEADERS.stage)).toBe('decode');
      expect(header(DEAD_LETTER_HEADERS.message)).toContain(`deeper than ${MAX_EVENT_DEPTH} levels`);
    }
    expect(dead[0]?.value?.toString()).toBe(deepObject);
  });
});
