import { Partitioners, type IHeaders, type Kafka } from 'kafkajs';
import { randomBytes } from 'node:crypto';
import { DEAD_LETTER_HEADERS, REPLAY_HEADERS } from './dead-letter.js';

export interface ReplayOptions {
  readonly kafka: Kafka;
  /** The dead-letter topic to read. */
  readonly topic: string;
  /** Only records whose `geb.error.code` is this. */
  readonly code?: string | undefined;
  /** Only records whose `geb.rule` is this (each record is replayed for its own rule only, with or without it). */
  readonly rule?: string | undefined;
  /** Republish here instead of each record's `geb.source.topic`. */
  readonly to?: string | undefined;
}

export interface ReplayResult {
  /** Dead-lettered records read (up to the end the topic had when the replay started). */
  readonly read: number;
  readonly replayed: number;
  /** Left out by --code / --rule. */
  readonly filtered: number;
  /** Without a source topic header and no --to: cannot be replayed. */
  readonly unroutable: number;
  readonly byTopic: Readonly<Record<string, number>>;
}

const REASON_HEADERS = new Set<string>([
  ...Object.values(DEAD_LETTER_HEADERS),
  ...Object.values(REPLAY_HEADERS),
]);

/**
 * Republishes dead-lettered records, after a fix, to the topic they came from (or `to`): key, value and the
 * producer's headers as they were, the bridge's reason headers removed. A record that names its rule is replayed for
 * that rule only, under its original idempotency keys (REPLAY_HEADERS): the event's rules that sent are not sent
 * again, and a second replay of a dead letter whose replay was delivered is skipped by the ledger. Back on the source topic a record goes to
 * the partition it came from, so it keeps its place in its key's order. Reads the dead-letter topic from the start
 * up to its end at the time the replay starts, then returns; it commits no offsets, so a second replay reads
 * everything again (use --code / --rule to pick).
 */
export async function replayDeadLetters(options: ReplayOptions): Promise<ReplayResult> {
  const { kafka, topic } = options;
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(
      offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]),
    );
  } finally {
    await admin.disconnect();
  }
  const result = { read: 0, replayed: 0, filtered: 0, unroutable: 0, byTopic: {} as Record<string, number> };
  if (ends.size === 0) return result;

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
  const consumer = kafka.consumer({ groupId: `geb-dlq-replay-${randomBytes(6).toString('hex')}` });
  await producer.connect();
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const done = new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async (payload) => {
            const { batch } = payload;
            const end = ends.get(batch.partition);
            for (const message of batch.messages) {
              if (end === undefined || BigInt(message.offset) >= end) break;
              result.read++;
              const headers = message.headers ?? {};
              const text = (name: string) => headers[name]?.toString();
              if (
                (options.code !== undefined && text(DEAD_LETTER_HEADERS.code) !== options.code) ||
                (options.rule !== undefined && text(DEAD_LETTER_HEADERS.rule) !== options.rule)
              ) {
                result.filtered++;
              } else {
                const source = text(DEAD_LETTER_HEADERS.topic);
                const target = options.to ?? source;
                if (target === undefined) {
                  result.unroutable++;
                } else {
                  const partition = target === source ? Number(text(DEAD_LETTER_HEADERS.partition)) : NaN;
                  await producer.send({
                    topic: target,
                    acks: -1,
                    messages: [
                      {
                        key: message.key,
                        value: message.value,
                        headers: replayHeaders(headers),
                        ...(Number.isInteger(partition) && { partition }),
                      },
                    ],
                  });
                  result.replayed++;
                  result.byTopic[target] = (result.byTopic[target] ?? 0) + 1;
                }
              }
              if (BigInt(message.offset) + 1n >= end) {
                ends.delete(batch.partition);
                if (ends.size === 0) resolve();
              }
            }
            await payload.heartbeat();
          },
        })
        .catch(reject);
      consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
    });
    await done;
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  return result;
}

/** The producer's headers, plus what the bridge needs to know the record is a replay (REPLAY_HEADERS). */
function replayHeaders(headers: IHeaders): IHeaders {
  const kept: IHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!REASON_HEADERS.has(name)) kept[name] = value;
  const rule = headers[DEAD_LETTER_HEADERS.rule];
  const keys = headers[DEAD_LETTER_HEADERS.idempotencyKeys];
  if (rule !== undefined) kept[REPLAY_HEADERS.rule] = rule;
  if (rule !== undefined && keys !== undefined) kept[REPLAY_HEADERS.idempotencyKeys] = keys;
  return kept;
}
