import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { Decoder, MAX_EVENT_DEPTH, jsonDepthExceeds, nestsDeeperThan } from '../../src/kafka/decoder.js';
import type { InboundMessage } from '../../src/kafka/message.js';
import { readMessageIndexes, writeMessageIndexes } from '../../src/kafka/protobuf.js';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry.js';
import { topicFilter } from '../../src/kafka/topic-filter.js';
import { Secret } from '../../src/secret.js';
import { uniqueName } from '../support/kafka.js';
import { FakeSchemaRegistry } from '../support/schema-registry.js';
import { RegistryProducer, frame } from '../support/registry-producer.js';
import { ORDER_AVRO } from '../support/schemas.js';

const message = (value: Buffer | string | null, topic = 't'): InboundMessage => ({
  topic,
  partition: 0,
  offset: '0',
  key: null,
  value: typeof value === 'string' ? Buffer.from(value) : value,
  headers: {},
  timestamp: '0',
});

async function failure(promise: Promise<unknown>): Promise<BridgeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BridgeError) return error;
    throw error;
  }
  throw new Error('expected a BridgeError');
}

const PROTO = `
syntax = "proto3";
package shop.events;

message OrderCreated {
  string order_id = 1;
}
enum Channel { EMAIL = 0; SMS = 1; }
message PasswordReset {
  string user_id = 1;
  Channel channel = 2;
  Contact contact = 3;
  int64 requested_at_ms = 4;
  message Contact {
    string email = 1;
    string display_name = 2;
  }
}
`;

describe('Decoder', () => {
  // Schemas are registered in the run's real registry (Apicurio, see test/support/global-setup.ts) by a producer
  // as users' services do. The fake registry serves only what a real one cannot be made to show on demand: an
  // outage, request counts (caching), Basic auth and TLS.
  const registryUrl = inject('schemaRegistryUrl');
  let fake: FakeSchemaRegistry;
  let producer: RegistryProducer;
  let decoder: Decoder;
  /** A subject of its own per call: the registry is shared by every test file of the run. */
  const topic = (name: string) => uniqueName(name);

  beforeAll(async () => {
    fake = await FakeSchemaRegistry.start();
    producer = new RegistryProducer(registryUrl);
    decoder = new Decoder({
      registry: new SchemaRegistryClient({ url: registryUrl, retries: 1, retryDelayMs: 1 }),
      plainJson: topicFilter(['json.*']),
    });
  });
  afterAll(() => fake.close());

  it('decodes Avro, with logical types as strings rules can use', async () => {
    const value = await producer.avro(topic('avro'), ORDER_AVRO, {
      orderId: 'A-1',
      shippedAt: Date.UTC(2026, 10, 24, 15, 4, 5, 123),
      deliveryDate: 20_600,
      total: Buffer.from([0xff, 0x85]), // -123 unscaled → -1.23
      trackingId: '0b5d6b7e-3c1f-4f5e-9a51-2f4d3c2b1a00',
      note: 'leave at door',
      customer: { email: 'ada@example.com', name: 'Ada' },
    });
    const decoded = await decoder.decode(message(value));
    expect(decoded).toEqual({
      kind: 'event',
      event: {
        orderId: 'A-1',
        shippedAt: '2026-11-24T15:04:05.123Z',
        deliveryDate: '2026-05-27',
        total: '-1.23',
        trackingId: '0b5d6b7e-3c1f-4f5e-9a51-2f4d3c2b1a00',
        note: 'leave at door',
        customer: { email: 'ada@example.com', name: 'Ada' },
      },
    });
  });

  it('asks the registry for a schema id once, then decodes from its cache (fake registry: it counts requests)', async () => {
    const id = fake.registerDirect('cached-value', 'JSON', '{"type":"object"}');
    const cached = new Decoder({ registry: new SchemaRegistryClient({ url: fake.url }) });
    const before = fake.requests.length;
    for (const n of [1, 2]) {
      expect(await cached.decode(message(frame(id, Buffer.from(`{"n":${n}}`))))).toEqual({
        kind: 'event',
        event: { n },
      });
    }
    expect(fake.requests.slice(before)).toEqual([`GET /schemas/ids/${id}`]);
  });

  it('dead-letters bytes that are not valid for their Avro schema', async () => {
    const value = await producer.avro(topic('avro'), ORDER_AVRO, {
      orderId: 'A-2',
      shippedAt: 0,
      deliveryDate: 0,
      total: Buffer.from([1]),
      trackingId: 'x',
      note: null,
      customer: { email: 'e', name: 'n' },
    });
    const error = await failure(decoder.decode(message(value.subarray(0, 12))));
    expect(error.code).toBe('DECODE_FAILED');
    expect(error.disposition).toBe('dead-letter');
  });

  it('decodes JSON Schema values and refuses those the schema rejects', async () => {
    const schema = {
      type: 'object',
      properties: { orderId: { type: 'string' }, amount: { type: 'number' } },
      required: ['orderId'],
    };
    const good = await producer.json(topic('json'), schema, { orderId: 'J-1', amount: 3.5 });
    expect(await decoder.decode(message(good))).toEqual({
      kind: 'event',
      event: { orderId: 'J-1', amount: 3.5 },
    });
    const id = good.readInt32BE(1);
    const bad = frame(id, Buffer.from(JSON.stringify({ amount: 'secret@example.com' })));
    const error = await failure(decoder.decode(message(bad)));
    expect(error.code).toBe('DECODE_FAILED');
    expect(error.message).not.toContain('secret@example.com');
  });

  it('decodes Protobuf by its message indexes: the first, a later and a nested message type', async () => {
    const protoTopic = topic('proto');
    const later = await producer.protobuf(protoTopic, PROTO, 'shop.events.PasswordReset', [1], {
      user_id: 'u-1',
      channel: 'SMS',
      contact: { email: 'ada@example.com', display_name: 'Ada' },
      requested_at_ms: '1764000000000',
    });
    expect(later.subarray(5, 7)).toEqual(Buffer.from([2, 2]));
    expect(await decoder.decode(message(later))).toEqual({
      kind: 'event',
      event: {
        user_id: 'u-1',
        channel: 'SMS',
        contact: { email: 'ada@example.com', display_name: 'Ada' },
        requested_at_ms: '1764000000000',
      },
    });
    const first = await producer.protobuf(protoTopic, PROTO, 'shop.events.OrderCreated', [0], {
      order_id: 'O-1',
    });
    expect(await decoder.decode(message(first))).toEqual({ kind: 'event', event: { order_id: 'O-1' } });
    const nested = await producer.protobuf(protoTopic, PROTO, 'shop.events.PasswordReset.Contact', [1, 0], {
      email: 'x@example.com',
    });
    expect(await decoder.decode(message(nested))).toEqual({
      kind: 'event',
      event: { email: 'x@example.com', display_name: '' },
    });
    const missing = frame(first.readInt32BE(1), Buffer.concat([writeMessageIndexes([5]), Buffer.from([])]));
    expect((await failure(decoder.decode(message(missing)))).code).toBe('DECODE_FAILED');
  });

  it('gives well-known types in usable forms: Timestamp as ISO-8601, wrappers as their value', async () => {
    const schema = `syntax = "proto3";
package p;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message M { google.protobuf.Timestamp at = 1; google.protobuf.StringValue nickname = 2; bytes raw = 3; }`;
    const value = await producer.protobuf(topic('wkt'), schema, 'p.M', [0], {
      at: { seconds: 1764000000, nanos: 5_000_000 },
      nickname: { value: 'Ace' },
      raw: Buffer.from('hi'),
    });
    expect(await decoder.decode(message(value))).toEqual({
      kind: 'event',
      event: { at: '2025-11-24T16:00:00.005Z', nickname: 'Ace', raw: 'aGk=' },
    });
  });

  it('resolves schema references: an Avro named type, a JSON Schema $ref and an imported .proto', async () => {
    const address = await producer.registerReferenced(
      'shop.Address',
      topic('shop.Address'),
      'AVRO',
      JSON.stringify({
        type: 'record',
        name: 'Address',
        namespace: 'shop',
        fields: [{ name: 'city', type: 'string' }],
      }),
    );
    const parcel = {
      type: 'record',
      name: 'Parcel',
      namespace: 'shop',
      fields: [{ name: 'to', type: 'shop.Address' }],
    };
    const avro = await producer.avro(topic('with-ref'), parcel, { to: { city: 'Oslo' } }, [address]);
    expect(await decoder.decode(message(avro))).toEqual({ kind: 'event', event: { to: { city: 'Oslo' } } });

    const pointId = 'https://shop.example/schemas/point.json';
    const point = await producer.registerReferenced(
      pointId,
      topic('point'),
      'JSON',
      JSON.stringify({
        $id: pointId,
        type: 'object',
        properties: { x: { type: 'number' } },
        required: ['x'],
      }),
    );
    const line = { type: 'object', properties: { from: { $ref: pointId } }, required: ['from'] };
    const json = await producer.json(topic('line'), line, { from: { x: 1 } }, [point]);
    expect(await decoder.decode(message(json))).toEqual({ kind: 'event', event: { from: { x: 1 } } });
    // The referenced schema is enforced too: `x` is required there.
    const invalid = frame(json.readInt32BE(1), Buffer.from('{"from":{}}'));
    expect((await failure(decoder.decode(message(invalid)))).message).toContain('/from: required');

    const person = await producer.registerReferenced(
      'common/person.proto',
      topic('person'),
      'PROTOBUF',
      'syntax = "proto3"; package common; message Person { string email = 1; }',
    );
    const proto = await producer.protobuf(
      topic('with-import'),
      'syntax = "proto3"; package app; import "common/person.proto"; message Hello { common.Person who = 1; }',
      'app.Hello',
      [0],
      { who: { email: 'a@b.c' } },
      [person],
    );
    expect(await decoder.decode(message(proto))).toEqual({
      kind: 'event',
      event: { who: { email: 'a@b.c' } },
    });
  });

  it('reads and writes message indexes as Confluent does', () => {
    expect(writeMessageIndexes([0])).toEqual(Buffer.from([0]));
    expect(writeMessageIndexes([1, 0])).toEqual(Buffer.from([4, 2, 0]));
    expect(readMessageIndexes(Buffer.from([0, 9]))).toEqual({ indexes: [0], offset: 1 });
    expect(readMessageIndexes(Buffer.from([4, 2, 0, 9]))).toEqual({ indexes: [1, 0], offset: 3 });
    expect(readMessageIndexes(writeMessageIndexes([300]))).toEqual({ indexes: [300], offset: 3 });
  });

  it('dead-letters an unknown schema id', async () => {
    const unknown = await failure(decoder.decode(message(frame(999_999, Buffer.from([1])))));
    expect(unknown.code).toBe('SCHEMA_NOT_FOUND');
    expect(unknown.disposition).toBe('dead-letter');
  });

  it('pauses (not dead-letters) while the registry fails (fake registry: a real one cannot fail on demand)', async () => {
    const failing = new Decoder({
      registry: new SchemaRegistryClient({ url: fake.url, retries: 1, retryDelayMs: 1 }),
    });
    const id = fake.registerDirect('later-value', 'JSON', '{"type":"object"}');
    fake.failWith = 503;
    const down = await failure(failing.decode(message(frame(id, Buffer.from('{}')))));
    expect(down.code).toBe('REGISTRY_UNAVAILABLE');
    expect(down.disposition).toBe('pause');
    fake.failWith = undefined;
    // The failure was not cached: the same event decodes once the registry is back.
    expect(await failing.decode(message(frame(id, Buffer.from('{"a":1}'))))).toEqual({
      kind: 'event',
      event: { a: 1 },
    });
  });

  it('pauses when the registry cannot be reached at all', async () => {
    const gone = new Decoder({
      registry: new SchemaRegistryClient({ url: 'http://127.0.0.1:1', retries: 1, retryDelayMs: 1 }),
    });
    const error = await failure(gone.decode(message(frame(1, Buffer.from('{}')))));
    expect(error.code).toBe('REGISTRY_UNAVAILABLE');
  });

  // Apicurio's own auth needs an OpenID provider; Basic auth as Confluent Cloud answers it is the fake's.
  it('sends Basic credentials, and pauses when they are refused', async () => {
    const locked = await FakeSchemaRegistry.start({ auth: { username: 'key', password: 'right' } });
    try {
      const id = locked.registerDirect('s-value', 'JSON', '{"type":"object"}');
      const value = frame(id, Buffer.from('{"ok":true}'));
      const wrong = new Decoder({
        registry: new SchemaRegistryClient({
          url: locked.url,
          username: 'key',
          password: new Secret('wrong'),
        }),
      });
      expect((await failure(wrong.decode(message(value)))).code).toBe('REGISTRY_UNAUTHORIZED');
      const right = new Decoder({
        registry: new SchemaRegistryClient({
          url: locked.url,
          username: 'key',
          password: new Secret('right'),
        }),
      });
      expect(await right.decode(message(value))).toEqual({ kind: 'event', event: { ok: true } });
    } finally {
      await locked.close();
    }
  });

  // The fake, for a TLS listener with the test certificate without configuring Quarkus's key store.
  it('talks TLS to an https registry when given its CA', async () => {
    const dir = new URL('../support/tls/', import.meta.url);
    const cert = await readFile(new URL('registry-cert.pem', dir), 'utf8');
    const key = await readFile(new URL('registry-key.pem', dir), 'utf8');
    const secure = await FakeSchemaRegistry.start({ tls: { cert, key } });
    try {
      const id = secure.registerDirect('s-value', 'JSON', '{"type":"object"}');
      const value = frame(id, Buffer.from('{"tls":true}'));
      const untrusting = new Decoder({
        registry: new SchemaRegistryClient({ url: secure.url, retries: 0 }),
      });
      expect((await failure(untrusting.decode(message(value)))).code).toBe('REGISTRY_UNAVAILABLE');
      const trusting = new Decoder({ registry: new SchemaRegistryClient({ url: secure.url, ca: cert }) });
      expect(await trusting.decode(message(value))).toEqual({ kind: 'event', event: { tls: true } });
    } finally {
      await secure.close();
    }
  });

  it('reads plain JSON only on the topics that allow it, and pauses on framing without a registry', async () => {
    expect(await decoder.decode(message('{"a":1}', 'json.orders'))).toEqual({
      kind: 'event',
      event: { a: 1 },
    });
    expect((await failure(decoder.decode(message('{"a":1}', 'avro.orders')))).code).toBe('DECODE_FAILED');
    expect((await failure(decoder.decode(message(Buffer.from([0xc3, 0x28]), 'json.x')))).message).toContain(
      'UTF-8',
    );
    expect(await decoder.decode(message(null))).toEqual({ kind: 'tombstone' });
    const bare = new Decoder();
    const error = await failure(bare.decode(message(frame(1, Buffer.from('{}')))));
    expect(error.code).toBe('REGISTRY_NOT_CONFIGURED');
    expect(error.disposition).toBe('pause');
  });

  // The fake, to count registry requests.
  it('refuses a value over MAX_EVENT_BYTES before any registry lookup or parse', async () => {
    const small = new Decoder({
      registry: new SchemaRegistryClient({ url: fake.url, retries: 1, retryDelayMs: 1 }),
      maxEventBytes: 64,
    });
    const atLimit = JSON.stringify({ note: 'x'.repeat(64 - 11) });
    expect(Buffer.byteLength(atLimit)).toBe(64);
    expect(await small.decode(message(atLimit, 'json.a'))).toEqual({
      kind: 'event',
      event: { note: 'x'.repeat(53) },
    });
    const before = fake.requests.length;
    // An unknown schema id: decoding it would ask the registry.
    for (const value of [frame(987654, Buffer.alloc(60)), Buffer.from(`${atLimit} `)]) {
      const error = await failure(small.decode(message(value, 'json.a')));
      expect(error.code).toBe('EVENT_TOO_LARGE');
      expect(error.disposition).toBe('dead-letter');
      expect(error.message).toBe('the value is 65 bytes, more than MAX_EVENT_BYTES (64)');
    }
    expect(fake.requests.length).toBe(before);
  });

  it('refuses JSON nested deeper than MAX_EVENT_DEPTH, naming the limit, and accepts it at the limit', async () => {
    const nestedArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const nestedObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    expect(await decoder.decode(message(nestedArrays(MAX_EVENT_DEPTH), 'json.a'))).toMatchObject({
      kind: 'event',
    });
    expect(await decoder.decode(message(nestedObjects(MAX_EVENT_DEPTH), 'json.a'))).toMatchObject({
      kind: 'event',
    });
    // About 5,000 levels in 60 KB: what used to overflow the stack of the walks after decoding.
    for (const value of [nestedArrays(MAX_EVENT_DEPTH + 1), nestedArrays(30_000), nestedObjects(5_000)]) {
      const error = await failure(decoder.decode(message(value, 'json.a')));
      expect(error.code).toBe('DECODE_FAILED');
      expect(error.disposition).toBe('dead-letter');
      expect(error.message).toContain(`deeper than ${MAX_EVENT_DEPTH} levels (MAX_EVENT_DEPTH)`);
    }
  });

  it('counts only brackets outside strings (escaped quotes included) when measuring JSON depth', () => {
    const deepText = JSON.stringify({ note: '[[[[{{{{'.repeat(100), quoted: 'a\\"[[[[' + '{'.repeat(200) });
    expect(jsonDepthExceeds(Buffer.from(deepText), 2)).toBeUndefined();
    expect(jsonDepthExceeds(Buffer.from('{"a":[{"b":"]]]"}]}'), 3)).toBeUndefined();
    expect(jsonDepthExceeds(Buffer.from('{"a":[{"b":"]]]"}]}'), 2)).toBe(6);
  });

  it('refuses Avro and JSON Schema values nested deeper than MAX_EVENT_DEPTH', async () => {
    const NODE = {
      type: 'record',
      name: 'Node',
      namespace: 'test',
      fields: [{ name: 'next', type: ['null', 'Node'], default: null }],
    };
    const chain = (n: number): unknown => {
      let node: unknown = { next: null };
      for (let i = 1; i < n; i++) node = { next: node };
      return node;
    };
    const ok = await producer.avro(topic('deep-avro'), NODE, chain(MAX_EVENT_DEPTH));
    expect(await decoder.decode(message(ok))).toMatchObject({ kind: 'event' });
    const deep = await producer.avro(topic('deep-avro'), NODE, chain(MAX_EVENT_DEPTH + 1));
    const error = await failure(decoder.decode(message(deep)));
    expect(error.code).toBe('DECODE_FAILED');
    expect(error.message).toContain('MAX_EVENT_DEPTH');

    const schema = { type: 'object', properties: { a: { type: 'array' } } };
    const json = await producer.json(topic('deep-json'), schema, {});
    const deepJson = frame(json.readInt32BE(1), Buffer.from('['.repeat(5_000) + ']'.repeat(5_000)));
    expect((await failure(decoder.decode(message(deepJson)))).message).toContain('MAX_EVENT_DEPTH');
  });

  it('measures decoded values iteratively: Maps, arrays and objects count, Buffers and scalars do not', () => {
    expect(nestsDeeperThan({ a: [new Map([['k', { b: 1 }]])] }, 4)).toBe(false);
    expect(nestsDeeperThan({ a: [new Map([['k', { b: 1 }]])] }, 3)).toBe(true);
    expect(nestsDeeperThan({ a: Buffer.from('[[[') }, 1)).toBe(false);
    expect(nestsDeeperThan('x', 0)).toBe(false);
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(nestsDeeperThan(deep, MAX_EVENT_DEPTH)).toBe(true);
  });
});
