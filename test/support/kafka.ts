import { randomBytes } from 'node:crypto';
import { Kafka, Partitioners, logLevel, type IHeaders, type KafkaMessage } from 'kafkajs';
import { inject } from 'vitest';
import { waitFor } from './wait.js';

export function brokers(): string[] {
  return inject('kafkaBrokers').split(',');
}

/** Topic and group names unique to one test, so tests never see each other's events or offsets. */
export function uniqueName(prefix: string): string {
  return `${prefix}.${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
}

export function kafka(): Kafka {
  return new Kafka({ clientId: 'geb-test', brokers: brokers(), logLevel: logLevel.NOTHING });
}

export async function createTopic(topic: string, numPartitions = 1): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions, replicationFactor: 1 }],
      waitForLeaders: false,
    });
    // kafkajs' waitForLeaders retries only LEADER_NOT_AVAILABLE, but a KRaft broker under load briefly answers
    // UNKNOWN_TOPIC_OR_PARTITION for a topic it just created: poll the metadata instead.
    await waitFor(
      async () => {
        try {
          const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
          const partitions = metadata.topics[0]?.partitions ?? [];
          return partitions.length === numPartitions && partitions.every((p) => p.leader >= 0);
        } catch {
          return false;
        }
      },
      { what: `topic ${topic} to have leaders` },
    );
  } finally {
    await admin.disconnect();
  }
}

export interface TestRecord {
  key?: string;
  value: string | Buffer | object | null;
  headers?: IHeaders;
  partition?: number;
  /** The record's Kafka timestamp (ms since the epoch, as a string); default: now. */
  timestamp?: string;
}

export async function produce(topic: string, records: TestRecord[]): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: records.map((r) => ({
        key: r.key ?? null,
        value:
          r.value === null || typeof r.value === 'string' || Buffer.isBuffer(r.value)
            ? r.value
            : JSON.stringify(r.value),
        headers: r.headers,
        partition: r.partition,
        ...(r.timestamp !== undefined && { timestamp: r.timestamp }),
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** The group's committed offset per partition; -1 where nothing was committed. */
export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/** Reads every record of `topic` from the beginning until `count` arrived (or the timeout passed). */
export async function readTopic(topic: string, count: number, timeoutMs = 20_000): Promise<KafkaMessage[]> {
  const consumer = kafka().consumer({ groupId: uniqueName('reader') });
  const seen: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message);
        return Promise.resolve();
      },
    });
    await waitFor(() => seen.length >= count, { timeoutMs, what: `${count} record(s) on ${topic}` });
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

export { waitFor };

/** How many records `topic` holds (the sum of its partitions' high watermarks, for a topic never truncated). */
export async function topicSize(topic: string): Promise<number> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}
