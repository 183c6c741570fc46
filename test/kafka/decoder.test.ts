import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { Decoder, MAX_EVENT_DEPTH, jsonDepthExceeds, nestsDeeperThan } from '../../src/kafka/decoder.js';
import type { InboundMessage } from '../../src/kafka/message.js';
import { readMessageIndexes, writeMessageIndexes } from '../../src/kafka/protobuf.js';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry.js';
import { topicFilter } from '../../src/kafka/topic-filter.js';
import { Secret } from '../../src/secret.js';
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
  let fake: FakeSchemaRegistry;
  let producer: RegistryProducer;
  let decoder: Decoder;

  beforeAll(async () => {
    fake = await FakeSchemaRegistry.start();
    producer = new RegistryProducer(fake.url);
    decoder = new Decoder({
      registry: new SchemaRegistryClient({ url: fake.url, retries: 1, retryDelayMs: 1 }),
      plainJson: topicFilter(['json.*']),
    });
  });
  afterAll(() => fake.close());

  it('decodes Avro, with logical types as strings rules can use, and caches the schema', async () => {
    const value = await producer.avro('avro', ORDER_AVRO, {
      orderId: 'A-1',
      shippedAt: Date.UTC(2026, 10, 24, 15, 4, 5, 123),
      deliveryDate: 20_600,
      total: Buffer.from([0xff, 0x85]), // -123 unscaled → -1.23
      trackingId: '0b5d6b7e-3c1f-4f5e-9a51-2f4d3c2b1a00',
      note: 'leave at door',
      customer: { email: 'ada@example.com', name: 'Ada' },
    });
    const before = fake.requests.length;
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
    await decoder.decode(message(value));
    expect(fake.requests.slice(before)).toEqual([`GET /schemas/ids/${value.readInt32BE(1)}`]);
  });

  it('dead-letters bytes that are not valid for their Avro schema', async () => {
    const value = await producer.avro('avro', ORDER_AVRO, {
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
    const good = await producer.json('json', schema, { orderId: 'J-1', amount: 3.5 });
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
    const later = await producer.protobuf('proto', PROTO, 'shop.events.PasswordReset', [1], {
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
    const first = await producer.protobuf('proto', PROTO, 'shop.events.OrderCreated', [0], {
      order_id: 'O-1',
    });
    expect(await decoder.decode(message(first))).toEqual({ kind: 'event', event: { order_id: 'O-1' } });
    const nested = await producer.protobuf('proto', PROTO, 'shop.events.PasswordReset.Contact', [1, 0], {
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
    const value = await producer.protobuf('wkt', schema, 'p.M', [0], {
      at: { seconds: 1764000000, nanos: 5_000_000 },
      nickname: { value: 'Ace' },
      raw: Buffer.from('hi'),
    });
    expect(await decoder.decode(message(value))).toEqual({
      kind: 'event',
      event: { at: '2025-11-24T16:00:00.005Z', nickname: 'Ace', raw: 'aGk=' },
    });
  });

  it('resolves schema references: an Avro named type and an imported .proto from other subjects', async () => {
    fake.registerDirect(
      'shop.Address',
      'AVRO',
      JSON.stringify({
        type: 'record',
        name: 'Address',
        namespace: 'shop',
        fields: [{ name: 'city', type: 'string' }],
      }),
    );
    const avroId = fake.registerDirect(
      'with-ref-value',
      'AVRO',
      JSON.stringify({
        type: 'record',
        name: 'Parcel',
        namespace: 'shop',
        fields: [{ name: 'to', type: 'shop.Address' }],
      }),
      [{ name: 'shop.Address', subject: 'shop.Address', version: 1 }],
    );
    // Avro binary of { to: { city: "Oslo" } }: a string is its zigzag length, then UTF-8.
    expect(await decoder.decode(message(frame(avroId, Buffer.from([8, ...Buffer.from('Oslo')]))))).toEqual({
      kind: 'event',
      event: { to: { city: 'Oslo' } },
    });

    fake.registerDirect(
      'common/person.proto',
      'PROTOBUF',
      'syntax = "proto3"; package common; message Person { string email = 1; }',
    );
    const protoId = fake.registerDirect(
      'with-import-value',
      'PROTOBUF',
      'syntax = "proto3"; package app; import "common/person.proto"; message Hello { common.Person who = 1; }',
      [{ name: 'common/person.proto', subject: 'common/person.proto', version: 1 }],
    );
    // Hello { who: Person { email: "a@b.c" } }: field 1 (LEN) holding field 1 (LEN) "a@b.c".
    const bytes = Buffer.from([0x0a, 7, 0x0a, 5, ...Buffer.from('a@b.c')]);
    expect(await decoder.decode(message(frame(protoId, Buffer.concat([Buffer.from([0]), bytes]))))).toEqual({
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

  it('dead-letters an unknown schema id, and pauses (not dead-letters) while the registry fails', async () => {
    const unknown = await failure(decoder.decode(message(frame(9999, Buffer.from([1])))));
    expect(unknown.code).toBe('SCHEMA_NOT_FOUND');
    expect(unknown.disposition).toBe('dead-letter');

    const id = fake.registerDirect('later-value', 'JSON', '{"type":"object"}');
    fake.failWith = 503;
    const down = await failure(decoder.decode(message(frame(id, Buffer.from('{}')))));
    expect(down.code).toBe('REGISTRY_UNAVAILABLE');
    expect(down.disposition).toBe('pause');
    fake.failWith = undefined;
    // The failure was not cached: the same event decodes once the registry is back.
    expect(await decoder.decode(message(frame(id, Buffer.from('{"a":1}'))))).toEqual({
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
    const ok = await producer.avro('avro', NODE, chain(MAX_EVENT_DEPTH));
    expect(await decoder.decode(message(ok))).toMatchObject({ kind: 'event' });
    const deep = await producer.avro('avro', NODE, chain(MAX_EVENT_DEPTH + 1));
    const error = await failure(decoder.decode(message(deep)));
    expect(error.code).toBe('DECODE_FAILED');
    expect(error.message).toContain('MAX_EVENT_DEPTH');

    const schema = { type: 'object' };
    const json = await producer.json('json', schema, {});
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
