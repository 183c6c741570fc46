import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { DEAD_LETTER_HEADERS } from './dead-letter.js';

export interface DeadLetterRecord {
  /** Where it sits in the dead-letter topic. */
  readonly partition: number;
  readonly offset: string;
  /** The original record's key as UTF-8 (null when it had none). */
  readonly key: string | null;
  readonly value: Buffer | null;
  /** Every header as UTF-8: the bridge's reason (`geb.*`) and the producer's own. */
  readonly headers: Readonly<Record<string, string>>;
  /** The Kafka timestamp of the dead-letter record (ms). */
  readonly timestamp: string;
}

export interface ReadDeadLettersOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** The newest this many records (across partitions). */
  readonly limit: number;
  /** Give up after this long: a broker that stops answering must not hang an operator's terminal. */
  readonly timeoutMs?: number;
}

export class DeadLetterTopicMissingError extends Error {}

/**
 * The newest `limit` records of a dead-letter topic, newest first, for `geb dlq show`. Reads each partition from
 * `limit` records before its end up to the end it had when the call started; commits nothing and changes nothing.
 */
export async function readDeadLetters(options: ReadDeadLettersOptions): Promise<DeadLetterRecord[]> {
  const { kafka, topic, limit } = options;
  const admin = kafka.admin();
  await admin.connect();
  const ranges = new Map<number, { start: bigint; end: bigint }>();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) throw new DeadLetterTopicMissingError(`topic ${topic} does not exist`);
    for (const o of await admin.fetchTopicOffsets(topic)) {
      const low = BigInt(o.low);
      const end = BigInt(o.high);
      const from = end - BigInt(limit);
      if (end > low) ranges.set(o.partition, { start: from > low ? from : low, end });
    }
  } finally {
    await admin.disconnect();
  }
  if (ranges.size === 0) return [];

  const records: DeadLetterRecord[] = [];
  const consumer = kafka.consumer({ groupId: `geb-dlq-show-${randomBytes(6).toString('hex')}` });
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const pending = new Set(ranges.keys());
    const done = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`reading ${topic} took longer than ${(options.timeoutMs ?? 60_000) / 1000} s`)),
        options.timeoutMs ?? 60_000,
      );
      consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
      consumer
        .run({
          autoCommit: false,
          eachBatch: async (payload) => {
            const { batch } = payload;
            const range = ranges.get(batch.partition);
            if (!range) return;
            for (const message of batch.messages) {
              const offset = BigInt(message.offset);
              if (offset < range.start) continue;
              if (offset >= range.end) break;
              const headers: Record<string, string> = {};
              for (const [name, value] of Object.entries(message.headers ?? {})) {
                if (value === undefined) continue;
                headers[name] = (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(', ');
              }
              records.push({
                partition: batch.partition,
                offset: message.offset,
                key: message.key ? message.key.toString('utf8') : null,
                value: message.value,
                headers,
                timestamp: message.timestamp,
              });
              if (offset + 1n >= range.end) {
                pending.delete(batch.partition);
                if (pending.size === 0) resolve();
              }
            }
            await payload.heartbeat();
          },
        })
        .then(() => {
          // Start each partition `limit` records before its end rather than at its beginning.
          for (const [partition, { start }] of ranges)
            consumer.seek({ topic, partition, offset: start.toString() });
        })
        .catch(reject);
    });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  const time = (r: DeadLetterRecord) =>
    Date.parse(r.headers[DEAD_LETTER_HEADERS.time] ?? '') || Number(r.timestamp);
  return records.sort((a, b) => time(b) - time(a)).slice(0, limit);
}
