import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { SchemaReference } from '../../src/kafka/schema-registry.js';
import protobuf from 'protobufjs';
import { writeMessageIndexes } from '../../src/kafka/protobuf.js';

/**
 * Encodes values the way producers using Confluent's serializers do, registering schemas under the topic-name
 * strategy's subject (`<topic>-value`). Avro and JSON Schema go through @kafkajs/confluent-schema-registry; Protobuf
 * is framed here because that library writes no message indexes (its issue 152), unlike Confluent's serializer.
 * `references` name schemas registered before (see `registerReferenced`), as Confluent's serializers send them.
 */
export class RegistryProducer {
  readonly registry: SchemaRegistry;
  readonly #url: string;

  constructor(url: string) {
    this.registry = new SchemaRegistry({ host: url });
    this.#url = url;
  }

  /** A subject's version as the registry answers it (the library's own REST client is private). */
  async version(subject: string, version: number | 'latest'): Promise<{ version: number; schema: string }> {
    const response = await fetch(`${this.#url}/subjects/${encodeURIComponent(subject)}/versions/${version}`);
    if (!response.ok) throw new Error(`GET ${subject} version ${version}: HTTP ${response.status}`);
    return (await response.json()) as { version: number; schema: string };
  }

  /** Registers a schema that others reference, under its own subject; returns the reference to it (latest version). */
  async registerReferenced(
    name: string,
    subject: string,
    type: 'AVRO' | 'JSON' | 'PROTOBUF',
    schema: string,
  ): Promise<SchemaReference> {
    await this.registry.register({ type: SchemaType[type], schema }, { subject });
    return { name, subject, version: (await this.version(subject, 'latest')).version };
  }

  async avro(
    topic: string,
    schema: object,
    value: unknown,
    references: SchemaReference[] = [],
  ): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(schema), references },
      { subject: `${topic}-value` },
    );
    return this.registry.encode(id, value);
  }

  async json(
    topic: string,
    schema: object,
    value: unknown,
    references: SchemaReference[] = [],
  ): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.JSON, schema: JSON.stringify(schema), references },
      { subject: `${topic}-value` },
    );
    return this.registry.encode(id, value);
  }

  /** `messageName` is the fully qualified type; `indexes` its path in the file, as Confluent's serializer writes. */
  async protobuf(
    topic: string,
    schema: string,
    messageName: string,
    indexes: number[],
    value: Record<string, unknown>,
    references: SchemaReference[] = [],
  ): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.PROTOBUF, schema, references },
      { subject: `${topic}-value` },
    );
    const { root, imports } = protobuf.parse(schema, { keepCase: true });
    for (const file of imports ?? []) {
      const common = protobuf.common.get(file);
      if (common?.nested) root.addJSON(common.nested);
    }
    // An imported .proto registered under another subject: add its types, as Confluent's serializer resolves them.
    for (const ref of references) {
      protobuf.parse((await this.version(ref.subject, ref.version)).schema, root, { keepCase: true });
    }
    const type = root.lookupType(messageName);
    return frame(
      id,
      Buffer.concat([
        writeMessageIndexes(indexes),
        Buffer.from(type.encode(type.fromObject(value)).finish()),
      ]),
    );
  }
}

export function frame(id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, payload]);
}
