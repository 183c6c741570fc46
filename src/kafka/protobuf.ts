import protobuf from 'protobufjs';
import { BridgeError } from '../errors.js';

// Well-known types in the forms rules can use (docs/decoding.md): a Timestamp as an ISO-8601 string, a wrapper
// (google.protobuf.StringValue…) as its value. protobufjs consults these hooks process-wide.
protobuf.wrappers['.google.protobuf.Timestamp'] = {
  fromObject(object) {
    return this.fromObject(object);
  },
  toObject(message, options) {
    const o = this.toObject(message, { ...options, longs: Number }) as { seconds?: number; nanos?: number };
    return new Date((o.seconds ?? 0) * 1000 + Math.floor((o.nanos ?? 0) / 1e6)).toISOString() as never;
  },
};
for (const name of ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes']) {
  protobuf.wrappers[`.google.protobuf.${name}Value`] = {
    fromObject(object) {
      return this.fromObject(object);
    },
    toObject(message, options) {
      return (this.toObject(message, { ...options, defaults: true }) as { value?: unknown }).value as never;
    },
  };
}

/**
 * Reads Confluent-framed Protobuf. After the schema id, Confluent's serializers write the *message indexes*: which
 * message of the .proto file the value is (a path through top-level and nested message types, in declaration order),
 * as a zigzag-varint count followed by that many zigzag varints; the common case [0] is written as a single 0.
 * @kafkajs/confluent-schema-registry ignores them (its issue 152), so this module does the decoding itself.
 */
export class ProtobufReader {
  readonly #root: protobuf.Root;
  /** The file's top-level message types, in declaration order. */
  readonly #topLevel: readonly protobuf.Type[];
  readonly #byPath = new Map<string, protobuf.Type>();

  constructor(schema: string, referenced: readonly string[]) {
    const options = { keepCase: true };
    // The main file alone tells the declaration order; the combined root (with references) resolves field types.
    const alone = protobuf.parse(schema, new protobuf.Root(), options);
    const pkg = alone.package;
    const home = pkg ? alone.root.lookup(pkg) : alone.root;
    const topLevel = messagesOf(home);

    const root = new protobuf.Root();
    const imports = new Set<string>(alone.imports ?? []);
    for (const text of referenced) {
      const parsed = protobuf.parse(text, root, options);
      for (const i of parsed.imports ?? []) imports.add(i);
    }
    // Well-known types (google/protobuf/*.proto) are never registered as references: protobufjs bundles them.
    for (const file of imports) {
      const common = protobuf.common.get(file);
      if (common?.nested) root.addJSON(common.nested);
    }
    protobuf.parse(schema, root, options);
    root.resolveAll();
    this.#root = root;
    this.#topLevel = topLevel.map((t) => root.lookupType(t.fullName));
  }

  read(payload: Buffer): unknown {
    const { indexes, offset } = readMessageIndexes(payload);
    const type = this.typeAt(indexes);
    let message: protobuf.Message;
    try {
      message = type.decode(payload.subarray(offset));
    } catch {
      throw new BridgeError(
        'DECODE_FAILED',
        `the value is not valid Protobuf for message ${type.fullName.slice(1)}`,
      );
    }
    return type.toObject(message, {
      longs: String,
      enums: String,
      bytes: String,
      defaults: true,
      json: true,
    });
  }

  /** The message type at a path of indexes: [1] is the second top-level message, [1, 0] its first nested one. */
  typeAt(indexes: readonly number[]): protobuf.Type {
    const key = indexes.join('.');
    const cached = this.#byPath.get(key);
    if (cached) return cached;
    let candidates = this.#topLevel;
    let type: protobuf.Type | undefined;
    for (const index of indexes) {
      type = candidates[index];
      if (!type) {
        throw new BridgeError(
          'DECODE_FAILED',
          `the Protobuf message indexes [${key}] name no message of the schema`,
        );
      }
      candidates = messagesOf(type).map((t) => this.#root.lookupType(t.fullName));
    }
    if (!type) throw new BridgeError('DECODE_FAILED', 'the Protobuf message indexes are empty');
    this.#byPath.set(key, type);
    return type;
  }
}

function messagesOf(namespace: protobuf.ReflectionObject | null): protobuf.Type[] {
  if (!(namespace instanceof protobuf.Namespace)) return [];
  return namespace.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
}

/** Parses the message indexes at the start of `payload`; returns them and where the message bytes begin. */
export function readMessageIndexes(payload: Buffer): { indexes: number[]; offset: number } {
  let offset = 0;
  const next = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = payload[offset++];
      if (byte === undefined || shift > 28) {
        throw new BridgeError('DECODE_FAILED', 'the Protobuf message indexes are truncated or malformed');
      }
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
    }
    return (result >>> 1) ^ -(result & 1);
  };
  const count = next();
  if (count === 0) return { indexes: [0], offset };
  if (count < 0 || count > 100) {
    throw new BridgeError('DECODE_FAILED', 'the Protobuf message indexes are truncated or malformed');
  }
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) indexes.push(next());
  return { indexes, offset };
}

/** The message-index prefix Confluent's serializers write for `indexes` (for producers and tests). */
export function writeMessageIndexes(indexes: readonly number[]): Buffer {
  if (indexes.length === 1 && indexes[0] === 0) return Buffer.from([0]);
  const bytes: number[] = [];
  const put = (n: number) => {
    let z = ((n << 1) ^ (n >> 31)) >>> 0;
    while (z > 0x7f) {
      bytes.push((z & 0x7f) | 0x80);
      z >>>= 7;
    }
    bytes.push(z);
  };
  put(indexes.length);
  for (const i of indexes) put(i);
  return Buffer.from(bytes);
}
