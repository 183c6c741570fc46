import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { BridgeError, ShutdownError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { InboundMessage } from './message.js';

export interface ConsumerOptions {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  /** kafkajs' default (30 s) when absent. */
  readonly sessionTimeoutMs?: number;
  readonly logger: Logger;
  /** Resolves when the message's outcome is final; only then is its offset committed. */
  readonly handle: (message: InboundMessage, heartbeat: () => Promise<void>) => Promise<void>;
  /** Called when kafkajs gives up on the consumer for good: the process must not live on as a zombie. */
  readonly onCrash: (error: Error) => void;
}

export interface RunningConsumer {
  readonly consumer: Consumer;
  /** Stops fetching, waits for the batch in progress, commits what is final and leaves the group. */
  stop(): Promise<void>;
}

/**
 * The consumer group side: fetches batches and hands their messages, in offset order, to the pipeline. An offset is
 * resolved and committed only after `handle` resolved for it, so a crash redelivers everything not yet final.
 */
export async function startConsumer(options: ConsumerOptions): Promise<RunningConsumer> {
  const { kafka, groupId, topics, fromBeginning, logger, handle } = options;
  const sessionTimeout = options.sessionTimeoutMs;
  const consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    // The heartbeat must come well within the session timeout, or a healthy member is evicted.
    ...(sessionTimeout !== undefined && {
      sessionTimeout,
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
    }),
  });

  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (!restart) options.onCrash(error);
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    logger.info(
      { groupId, memberId: event.payload.memberId, assignment: event.payload.memberAssignment },
      'joined consumer group',
    );
  });

  await assertTopicsExist(kafka, topics);
  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning });
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async (payload: EachBatchPayload) => {
      const { batch } = payload;
      const heartbeat = () => payload.heartbeat();
      for (const message of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        try {
          await handle(
            {
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              key: message.key,
              value: message.value,
              headers: message.headers ?? {},
              timestamp: message.timestamp,
            },
            heartbeat,
          );
        } catch (error) {
          // Stopping mid-event: leave it unresolved so that it is redelivered; commit what is final.
          if (error instanceof ShutdownError) break;
          throw error;
        }
        payload.resolveOffset(message.offset);
        await payload.commitOffsetsIfNecessary();
        await heartbeat();
      }
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    consumer,
    stop() {
      stopping ??= consumer.disconnect();
      return stopping;
    },
  };
}

/**
 * kafkajs would retry a subscription to a missing topic for minutes and then fail obscurely; the bridge never creates
 * topics itself (most clusters forbid it), so it says at once which are missing.
 */
async function assertTopicsExist(kafka: Kafka, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      throw new BridgeError(
        'TOPIC_MISSING',
        `the rules name topic(s) that do not exist on the cluster: ${missing.join(', ')}. Create them, or fix RULES_FILE`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}
