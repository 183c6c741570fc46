import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { BridgeError } from '../errors.js';
import type { InboundMessage } from './message.js';
import type * as AvroModule from './avro.js';
import type * as ProtobufModule from './protobuf.js';
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

/**
 * How deeply a decoded event may nest objects and arrays (`{}` and `[]` are depth 1, `{"a":[]}` depth 2). Deeper
 * events are DECODE_FAILED, so that every later walk over an event (template scope, Liquid, logging) is bounded by
 * it: an event nested thousands deep would otherwise overflow the stack of any recursive walk. Real events nest a
 * handful of levels. docs/decoding.md, docs/security.md.
 */
export const MAX_EVENT_DEPTH = 64;

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
      reader = registry
        .getById(id)
        .then(async (writer) => compileReader(writer, await formatReaders(writer)));
      reader.catch(() => this.#readers.delete(id));
      this.#readers.set(id, reader);
    }
    return reader;
  }
}

/**
 * The Avro and Protobuf readers (avsc, protobufjs), loaded with the first schema that needs them: a bridge that reads
 * plain JSON never holds them in memory.
 */
async function formatReaders(writer: WriterSchema): Promise<FormatReaders> {
  if (writer.schemaType === 'AVRO') return { avroReader: (await import('./avro.js')).avroReader };
  if (writer.schemaType === 'PROTOBUF')
    return { ProtobufReader: (await import('./protobuf.js')).ProtobufReader };
  return {};
}

interface FormatReaders {
  readonly avroReader?: typeof AvroModule.avroReader;
  readonly ProtobufReader?: typeof ProtobufModule.ProtobufReader;
}

function compileReader(writer: WriterSchema, { avroReader, ProtobufReader }: FormatReaders): Reader {
  const what = `schema id ${writer.id ?? '?'}`;
  try {
    switch (writer.schemaType) {
      case 'AVRO': {
        if (!avroReader) throw new Error('the Avro reader is not loaded');
        const type = avroReader(
          writer.schema,
          writer.referenced.map((r) => r.schema),
        );
        return (payload) => {
          let decoded: unknown;
          try {
            decoded = type.fromBuffer(payload);
          } catch {
            // Also a RangeError of avsc's own recursion on a value nested past the stack.
            throw new BridgeError('DECODE_FAILED', `the value is not valid Avro for ${what}`);
          }
          return toPlain(boundedDepth(decoded, 'Avro'));
        };
      }
      case 'PROTOBUF': {
        if (!ProtobufReader) throw new Error('the Protobuf reader is not loaded');
        const reader = new ProtobufReader(
          writer.schema,
          writer.referenced.map((r) => r.schema),
        );
        return (payload) => {
          let decoded: unknown;
          try {
            decoded = reader.read(payload);
          } catch (error) {
            if (error instanceof BridgeError) throw error;
            // protobufjs decodes and converts recursively: a RangeError on a value nested past the stack.
            throw new BridgeError('DECODE_FAILED', `the value could not be read as Protobuf for ${what}`);
          }
          return boundedDepth(decoded, 'Protobuf');
        };
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
  // Before parsing: JSON.parse itself copes with deep nesting, but what is done with its result may not.
  const depth = jsonDepthExceeds(value, MAX_EVENT_DEPTH);
  if (depth !== undefined) throw tooDeep(`at byte ${depth}`);
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

function tooDeep(where: string): BridgeError {
  return new BridgeError(
    'DECODE_FAILED',
    `the value nests objects and arrays deeper than ${MAX_EVENT_DEPTH} levels (MAX_EVENT_DEPTH), ${where}`,
  );
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The byte offset of the first bracket that opens a level deeper than `limit`, outside strings; undefined if none.
 * One pass over the bytes, no allocation: it runs before the parse. Invalid JSON is left for JSON.parse to refuse.
 */
export function jsonDepthExceeds(value: Buffer, limit: number): number | undefined {
  // Most events hold fewer brackets than the limit in all: counted natively, they need no byte-by-byte scan.
  if (openBracketsAtMost(value, limit)) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < value.length; i++) {
    const byte = value[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limit) return i;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return undefined;
}

function openBracketsAtMost(value: Buffer, limit: number): boolean {
  let count = 0;
  for (const bracket of [OPEN_BRACE, OPEN_BRACKET]) {
    for (let i = value.indexOf(bracket); i !== -1; i = value.indexOf(bracket, i + 1)) {
      if (++count > limit) return false;
    }
  }
  return true;
}

/**
 * Whether a decoded value (plain data, Avro records, Maps, Buffers) nests deeper than `limit`. Iterative, with an
 * explicit stack, so that it cannot overflow on the very values it exists to refuse; it stops at the first level
 * too deep.
 */
export function nestsDeeperThan(root: unknown, limit: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth } = item;
    if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) continue;
    if (depth + 1 > limit) return true;
    const children: Iterable<unknown> =
      value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}

/** A decoded value from the registry formats, refused if too deep (their decoders build it without a check). */
function boundedDepth(value: unknown, what: string): unknown {
  if (nestsDeeperThan(value, MAX_EVENT_DEPTH)) throw tooDeep(`in its ${what} decoding`);
  return value;
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
