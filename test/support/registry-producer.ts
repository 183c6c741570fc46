import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import protobuf from 'protobufjs';
import { writeMessageIndexes } from '../../src/kafka/protobuf.js';

/**
 * Encodes values the way producers using Confluent's serializers do, registering schemas under the topic-name
 * strategy's subject (`<topic>-value`). Avro and JSON Schema go through @kafkajs/confluent-schema-registry; Protobuf
 * is framed here because that library writes no message indexes (its issue 152), unlike Confluent's serializer.
 */
export class RegistryProducer {
  readonly registry: SchemaRegistry;

  constructor(url: string) {
    this.registry = new SchemaRegistry({ host: url });
  }

  async avro(topic: string, schema: object, value: unknown): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
      { subject: `${topic}-value` },
    );
    return this.registry.encode(id, value);
  }

  async json(topic: string, schema: object, value: unknown): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.JSON, schema: JSON.stringify(schema) },
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
  ): Promise<Buffer> {
    const { id } = await this.registry.register(
      { type: SchemaType.PROTOBUF, schema },
      { subject: `${topic}-value` },
    );
    const { root, imports } = protobuf.parse(schema, { keepCase: true });
    for (const file of imports ?? []) {
      const common = protobuf.common.get(file);
      if (common?.nested) root.addJSON(common.nested);
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
