import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEAD_LETTER_HEADERS } from '../../src/kafka/dead-letter.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';
import { RegistryProducer, frame } from '../support/registry-producer.js';
import { FakeSchemaRegistry } from '../support/schema-registry.js';

const NOTICE = {
  type: 'record',
  name: 'Notice',
  namespace: 'test',
  fields: [
    { name: 'type', type: 'string' },
    { name: 'email', type: ['null', 'string'], default: null },
    { name: 'subject', type: 'string' },
  ],
};

describe('poison inputs on one partition are dead-lettered while the good event behind them is delivered', () => {
  const topic = uniqueName('notices');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let registry: FakeSchemaRegistry;
  let running: InProcessBridge;

  beforeAll(async () => {
    // The organisation's only Campaign-type email domain: Genesys refuses (400) email from any other.
    simulator = await GenesysSimulator.start({ senderDomains: ['shop.example'] });
    // The fake registry, not the run's Apicurio: the last test takes the registry down (503) under the running bridge,
    // a fault a real registry cannot show on demand. Decoding against Apicurio is test/integration/schema-registry-decoding.
    registry = await FakeSchemaRegistry.start();
    await createTopic(topic);
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
  - name: newsletter-email
    topics: [${topic}]
    match: { type: [Newsletter] }
    action:
      agentlessEmail:
        from: { email: news@unverified.example }
        to: { email: "{{ email }}" }
        subject: "News"
        text: "News"
  - name: notice-contact
    topics: [${topic}]
    match: { type: [Contact] }
    action:
      campaignContact:
        contactListId: "{{ list }}"
        data: { email: "{{ email }}" }
`);
    running = await startTestBridge(
      {
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        RULES_FILE: rulesFile,
        ...simulatorEnv(simulator),
        SCHEMA_REGISTRY_URL: registry.url,
        MAX_EVENT_BYTES: '4096',
      },
      { baseDelayMs: 20, maxDelayMs: 100, pauseProbeMs: 200 },
    );
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
    await registry?.close();
  });

  it('writes each to the DLQ with original bytes and the right reason headers', async () => {
    const producer = new RegistryProducer(registry.url);
    const good = await producer.avro(topic, NOTICE, {
      type: 'Notice',
      email: 'ada@example.com',
      subject: 'All good',
    });
    const schemaId = good.readInt32BE(1);
    const poison: { value: Buffer; code: string; stage: string; rule?: string }[] = [
      { value: frame(424242, Buffer.from([2, 0x41])), code: 'SCHEMA_NOT_FOUND', stage: 'decode' },
      { value: frame(schemaId, Buffer.from([0x0c, 0x4e])), code: 'DECODE_FAILED', stage: 'decode' },
      { value: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), code: 'DECODE_FAILED', stage: 'decode' },
      { value: Buffer.from('{"type": "Notice", '), code: 'DECODE_FAILED', stage: 'decode' },
      {
        value: await producer.avro(topic, NOTICE, { type: 'Notice', email: null, subject: 'No address' }),
        code: 'TEMPLATE_VARIABLE_MISSING',
        stage: 'render',
        rule: 'notice-email',
      },
      {
        // Genesys refuses subjects over 400 characters: not worth a call.
        value: Buffer.from(
          JSON.stringify({ type: 'Notice', email: 'bob@example.com', subject: 'x'.repeat(450) }),
        ),
        code: 'GENESYS_LIMIT_EXCEEDED',
        stage: 'render',
        rule: 'notice-email',
      },
      {
        // Valid as far as the bridge can tell; Genesys refuses the sender's domain (400): only Genesys knows.
        value: Buffer.from(JSON.stringify({ type: 'Newsletter', email: 'bob@example.com' })),
        code: 'GENESYS_REJECTED',
        stage: 'deliver',
        rule: 'newsletter-email',
      },
      {
        // Over MAX_EVENT_BYTES: not even parsed.
        value: Buffer.from(
          JSON.stringify({ type: 'Notice', email: 'bob@example.com', subject: 'x'.repeat(5000) }),
        ),
        code: 'EVENT_TOO_LARGE',
        stage: 'decode',
      },
      // Values that try to steer the contact call to another path or host.
      ...['x/../../other', 'https://evil.example/', '%2F..'].map((list) => ({
        value: Buffer.from(JSON.stringify({ type: 'Contact', list, email: 'bob@example.com' })),
        code: 'INVALID_FIELD_VALUE',
        stage: 'render',
        rule: 'notice-contact',
      })),
    ];
    await produce(topic, [
      ...poison.map((p, i) => ({ key: `k-${i}`, value: p.value, headers: { origin: `test-${i}` } })),
      { key: 'k-good', value: good },
    ]);

    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === poison.length + 1, {
      what: 'the commit past every event',
    });
    const emails = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(emails.filter((e) => e.status === 200).map((e) => e.body)).toEqual([
      {
        senderType: 'Outbound',
        fromAddress: { email: 'notices@shop.example' },
        toAddresses: [{ email: 'ada@example.com' }],
        subject: 'All good',
        textBody: 'Notice',
      },
    ]);
    // The one call Genesys refused: the newsletter from a domain that is not a Campaign-type domain.
    const refused = emails.filter((e) => e.status !== 200);
    expect(
      refused.map((e) => [e.status, (e.response as { details: { fieldName: string }[] }).details]),
    ).toEqual([[400, [{ fieldName: 'fromAddress.email', errorCode: 'DOMAIN_NOT_CAMPAIGN_TYPE' }]]]);
    // Nothing reached any other path of the simulator (contacts included): only the token and the good email.
    expect(new Set(simulator.received().map((r) => r.path))).toEqual(
      new Set(['/oauth/token', AGENTLESS_EMAIL_PATH]),
    );

    // Events with different keys are delivered concurrently, so they reach the DLQ in any order: sort by source.
    const sourceOffset = (m: { headers?: Record<string, unknown> }) =>
      Number(String((m.headers?.[DEAD_LETTER_HEADERS.offset] as Buffer | undefined) ?? ''));
    const dead = (await readTopic(`${topic}.dlq`, poison.length)).sort(
      (a, b) => sourceOffset(a) - sourceOffset(b),
    );
    expect(dead).toHaveLength(poison.length);
    poison.forEach((expected, i) => {
      const record = dead[i];
      const header = (name: string) => record?.headers?.[name]?.toString();
      expect(record?.key?.toString()).toBe(`k-${i}`);
      expect(record?.value).toEqual(expected.value);
      expect(header('origin')).toBe(`test-${i}`);
      expect(header(DEAD_LETTER_HEADERS.code)).toBe(expected.code);
      expect(header(DEAD_LETTER_HEADERS.stage)).toBe(expected.stage);
      expect(header(DEAD_LETTER_HEADERS.rule)).toBe(expected.rule);
      expect(header(DEAD_LETTER_HEADERS.topic)).toBe(topic);
      expect(header(DEAD_LETTER_HEADERS.partition)).toBe('0');
      expect(header(DEAD_LETTER_HEADERS.offset)).toBe(String(i));
      expect(header(DEAD_LETTER_HEADERS.message)).toBeTruthy();
      expect(header(DEAD_LETTER_HEADERS.message)).not.toContain('bob@example.com');
      expect(Number.isNaN(Date.parse(header(DEAD_LETTER_HEADERS.time) ?? ''))).toBe(false);
    });
  });

  it('pauses while the registry is down instead of dead-lettering, and delivers once it is back', async () => {
    const producer = new RegistryProducer(registry.url);
    const value = await producer.avro(
      topic,
      { ...NOTICE, name: 'Notice2' },
      {
        type: 'Notice',
        email: 'cy@example.com',
        subject: 'After the outage',
      },
    );
    const before = (await committedOffsets(groupId, topic)).get(0) ?? 0;
    registry.failWith = 503;
    await produce(topic, [{ key: 'k-outage', value }]);
    await waitFor(() => running.bridge.health.paused?.code === 'REGISTRY_UNAVAILABLE', {
      what: 'the bridge to pause on the registry',
    });
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(before);
    registry.failWith = undefined;
    await waitFor(
      () =>
        simulator
          .received(AGENTLESS_EMAIL_PATH)
          .some((e) => JSON.stringify(e.body).includes('After the outage')),
      { what: 'the delivery after the registry came back' },
    );
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === before + 1, {
      what: 'the commit after the outage',
    });
    expect(running.bridge.health.paused).toBeUndefined();
    // Still only the eleven poison events were dead-lettered: none during the outage.
    const deadLettered = running.logs
      .records()
      .filter((r) => r['msg'] === 'delivery' && r['outcome'] === 'dead-lettered');
    expect(deadLettered).toHaveLength(11);
  });
});
