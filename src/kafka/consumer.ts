import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { ShutdownError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { InboundMessage } from './message.js';

export interface ConsumerOptions {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
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
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });

  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (!restart) options.onCrash(error);
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    logger.info({ groupId, memberId: event.payload.memberId, assignment: event.payload.memberAssignment }, 'joined consumer group');
  });

  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning });
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async (payload: EachBatchPayload) => {
      const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
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
        resolveOffset(message.offset);
        await commitOffsetsIfNecessary();
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
