import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { BridgeError } from '../errors.js';
import { avroReader } from './avro.js';
import type { InboundMessage } from './message.js';
import { ProtobufReader } from './protobuf.js';
import type { SchemaRegistryClient, WriterSchema } from './schema-registry.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export type Decoded = { readonly kind: 'event'; readonly event: unknown } | { readonly kind: 'tombstone' };

/** Confluent's wire format: magic byte 0, a 4-byte big-endian schema id, then the payload. */
const MAGIC_BYTE = 0;
const HEADER_LENGTH = 5;

export interface DecoderOptions {
  /** Absent: framed values pause consumption (REGISTRY_NOT_CONFIGURED) rather than being lost to the DLQ. */
  readonly registry?: SchemaRegistryClient | undefined;
  /** Whether unframed values of a topic are read as UTF-8 JSON (PLAIN_JSON_TOPICS). Default: every topic. */
  readonly plainJson?: (topic: string) => boolean;
  /** Larger values are refused before any registry lookup or parse (EVENT_TOO_LARGE). Default: 1 MiB. */
  readonly maxEventBytes?: number;
}

export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

type Reader = (payload: Buffer) => unknown;

/**
 * Turns a record's value into the event that rules see: Confluent-framed Avro, JSON Schema or Protobuf through the
 * schema registry, or plain UTF-8 JSON. A null value is a tombstone (compaction's delete marker): it carries no
 * event, so it is skipped rather than dead-lettered. Errors are BridgeErrors whose disposition says whether the event
 * is at fault (dead-letter) or the registry (pause).
 */
export class Decoder {
  readonly #registry: SchemaRegistryClient | undefined;
  readonly #plainJson: (topic: string) => boolean;
  readonly #readers = new Map<number, Promise<Reader>>();
  readonly #maxEventBytes: number;

  constructor(options: DecoderOptions = {}) {
    this.#registry = options.registry;
    this.#plainJson = options.plainJson ?? (() => true);
    this.#maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  }

  async decode(message: InboundMessage): Promise<Decoded> {
    const value = message.value;
    if (value === null) return { kind: 'tombstone' };
    // First of all: parsing or decoding a huge value costs memory and CPU whatever its outcome.
    if (value.length > this.#maxEventBytes) {
      throw new BridgeError(
        'EVENT_TOO_LARGE',
        `the value is ${value.length} bytes, more than MAX_EVENT_BYTES (${this.#maxEventBytes})`,
      );
    }
    // JSON text never starts with a NUL byte, so the magic byte tells the two formats apart.
    if (value.length > 0 && value[0] === MAGIC_BYTE) {
      if (value.length < HEADER_LENGTH) {
        throw new BridgeError(
          'DECODE_FAILED',
          'the value starts like schema registry framing but is too short',
        );
      }
      const id = value.readInt32BE(1);
      const reader = await this.#readerFor(id);
      return { kind: 'event', event: reader(value.subarray(HEADER_LENGTH)) };
    }
    if (!this.#plainJson(message.topic)) {
      throw new BridgeError(
        'DECODE_FAILED',
        'the value is not in the schema registry wire format, and PLAIN_JSON_TOPICS does not accept plain JSON on this topic',
      );
    }
    return decode(message);
  }

  /**
   * The value when `decode` would read it as plain JSON text (not a tombstone, not framed, within MAX_EVENT_BYTES, on
   * a PLAIN_JSON_TOPICS topic): what the rules prefilter may test before decoding. Otherwise undefined.
   */
  plainJsonValue(message: InboundMessage): Buffer | undefined {
    const value = message.value;
    if (value === null || value.length > this.#maxEventBytes || value[0] === MAGIC_BYTE) return undefined;
    return this.#plainJson(message.topic) ? value : undefined;
  }

  #readerFor(id: number): Promise<Reader> {
    const registry = this.#registry;
    if (!registry) {
      return Promise.reject(
        new BridgeError(
          'REGISTRY_NOT_CONFIGURED',
          `a value carries schema id ${id} but SCHEMA_REGISTRY_URL is not set`,
        ),
      );
    }
    let reader = this.#readers.get(id);
    if (!reader) {
      reader = registry.getById(id).then(compileReader);
      reader.catch(() => this.#readers.delete(id));
      this.#readers.set(id, reader);
    }
    return reader;
  }
}

function compileReader(writer: WriterSchema): Reader {
  const what = `schema id ${writer.id ?? '?'}`;
  try {
    switch (writer.schemaType) {
      case 'AVRO': {
        const type = avroReader(
          writer.schema,
          writer.referenced.map((r) => r.schema),
        );
        return (payload) => {
          try {
            return toPlain(type.fromBuffer(payload));
          } catch {
            throw new BridgeError('DECODE_FAILED', `the value is not valid Avro for ${what}`);
          }
        };
      }
      case 'PROTOBUF': {
        const reader = new ProtobufReader(
          writer.schema,
          writer.referenced.map((r) => r.schema),
        );
        return (payload) => reader.read(payload);
      }
      case 'JSON': {
        const validate = jsonSchemaValidator(writer);
        return (payload) => {
          const event = parseJson(payload);
          if (!validate(event)) {
            const first = validate.errors?.[0];
            // instancePath and keyword only: Ajv's messages can quote the offending value.
            throw new BridgeError(
              'DECODE_FAILED',
              `the value does not satisfy ${what} (${first?.instancePath || '/'}: ${first?.keyword ?? 'invalid'})`,
            );
          }
          return event;
        };
      }
    }
  } catch (error) {
    if (error instanceof BridgeError) throw error;
    // The schema itself is unusable here: only this schema's events are affected, and a fix needs a person.
    throw new BridgeError('DECODE_FAILED', `${what} could not be compiled: ${(error as Error).name}`);
  }
}

function jsonSchemaValidator(writer: WriterSchema): ValidateFunction {
  const schema = JSON.parse(writer.schema) as AnySchema & { $schema?: string };
  const draft = typeof schema === 'object' ? (schema.$schema ?? '') : '';
  const options = { strict: false, allErrors: false, validateFormats: false } as const;
  const ajv = draft.includes('2020-12')
    ? new Ajv2020(options)
    : draft.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options);
  for (const ref of writer.referenced) ajv.addSchema(JSON.parse(ref.schema) as AnySchema, ref.name);
  return ajv.compile(schema);
}

/** Plain UTF-8 JSON, unframed. */
export function decode(message: InboundMessage): Decoded {
  if (message.value === null) return { kind: 'tombstone' };
  return { kind: 'event', event: parseJson(message.value) };
}

function parseJson(value: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    throw new BridgeError('DECODE_FAILED', 'the value is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // JSON.parse's message quotes the offending text, which may be personal data: keep only the position.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new BridgeError(
      'DECODE_FAILED',
      `the value is not JSON${position ? ` (error at position ${position})` : ''}`,
    );
  }
}

/** Avro records are class instances and bytes are Buffers: rules see plain JSON data (bytes as base64). */
function toPlain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toPlain(v);
    return out;
  }
  return value;
}
