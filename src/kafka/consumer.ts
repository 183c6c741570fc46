import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, TopicPartitions } from 'kafkajs';
import { BridgeError, ShutdownError } from '../errors.js';
import type { Intake, Source } from '../intake.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { InboundMessage } from './message.js';

export interface ConsumerOptions<P> {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  /** kafkajs' default (30 s) when absent. */
  readonly sessionTimeoutMs?: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Where each fetched message goes, in offset order (the delivery runner); it says what to pause and commit. */
  readonly intake: Intake<InboundMessage, P> & { attach(source: Source): void; start(): void };
  /** Called when kafkajs gives up on the consumer for good: the process must not live on as a zombie. */
  readonly onCrash: (error: Error) => void;
}

export interface ConsumerState {
  /** A member of the group with an assignment (false while rebalancing). */
  readonly joined: boolean;
  readonly stopping: boolean;
  /** Set when the consumer (or a delivery, through the intake) died for good. */
  readonly crashed: Error | undefined;
  /** Set while kafkajs has given up on the broker for now and restarts the consumer; cleared on joining again. */
  readonly disconnected: { readonly reason: string; readonly since: Date } | undefined;
}

export interface StopOptions {
  /** How long in-flight deliveries may run on. */
  readonly graceMs: number;
  /**
   * How long aborted deliveries may unwind after the grace (default 5 s); the caller bounds the commit and the
   * disconnect that follow.
   */
  readonly unwindMs?: number;
  /** Called when the grace period is over and deliveries are still running: abort them. */
  readonly onGraceOver: () => void;
}

export interface RunningConsumer {
  readonly consumer: Consumer;
  state(): ConsumerState;
  /** Stops fetching, lets the intake finish (within the grace) and make its final commit, leaves the group. */
  stop(options: StopOptions): Promise<void>;
}

/** After the grace, aborted deliveries get this long to unwind before the consumer leaves anyway. */
const UNWIND_MS = 5_000;

/**
 * The consumer group side: group membership, fetch, pause/resume, commit; nothing else. Each fetched message goes to
 * the intake, and kafkajs' fetch position moves past it at once (resolveOffset), while the committed offset is what
 * the intake asks for (autoCommit off). eachBatch returns without waiting for deliveries, so kafkajs' own loop keeps
 * heartbeating however long they take.
 */
export async function startConsumer<P>(options: ConsumerOptions<P>): Promise<RunningConsumer> {
  const { kafka, groupId, topics, fromBeginning, logger, intake } = options;
  let running = false;
  let joined = false;
  let stopping = false;
  let crashed: Error | undefined;
  let disconnected: ConsumerState['disconnected'];
  const consumer = createConsumer(kafka, groupId, options.sessionTimeoutMs, () => !stopping);

  intake.attach(sourceOf(consumer, logger, () => running && !disconnected));

  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (restart) {
      options.metrics?.consumerRestarts.inc();
      intake.restarted();
      disconnected ??= {
        reason: `kafkajs lost the broker and restarts the consumer (${error.name}: ${error.message.split('\n', 1)[0] ?? ''})`,
        since: new Date(),
      };
      return;
    }
    // Stopping turns every restart down (restartOnFailure): that is the stop going on, not a crash to exit on.
    if (stopping) {
      logger.info({ err: error }, 'the Kafka consumer gave up while stopping; it is not restarted');
      return;
    }
    crashed = error;
    options.onCrash(error);
  });
  consumer.on(consumer.events.REBALANCING, () => {
    joined = false;
  });
  consumer.on(consumer.events.STOP, () => {
    joined = false;
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    const assignment = event.payload.memberAssignment;
    joined = true;
    disconnected = undefined;
    intake.assigned(
      new Set(
        Object.entries(assignment).flatMap(([topic, partitions]) =>
          partitions.map((p) => partitionId(topic, p)),
        ),
      ),
    );
    logger.info({ groupId, memberId: event.payload.memberId, assignment }, 'joined consumer group');
  });

  await assertTopicsExist(kafka, topics);
  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: (payload) => handBatchOver(payload, intake, options.metrics),
  });
  running = true;
  intake.start();

  let stopped: Promise<void> | undefined;
  const stop = async ({ graceMs, onGraceOver, unwindMs = UNWIND_MS }: StopOptions) => {
    stopping = true;
    // A restart kafkajs has already scheduled would rejoin the group during the grace: cancel it now (stop() clears
    // kafkajs' restart timer; restartOnFailure turns down any later one). A consumer that is running keeps running
    // until the grace is over, so that the final commit is still accepted.
    if (disconnected)
      void consumer
        .stop()
        .catch((error: unknown) => logger.debug({ err: error }, 'cancelling the restart failed'));
    await intake.stop({ graceMs, unwindMs, onGraceOver });
    await consumer.disconnect();
    running = false;
  };

  return {
    consumer,
    state: () => ({ joined, stopping, crashed: crashed ?? intake.crashed, disconnected }),
    stop(stopOptions) {
      stopped ??= stop(stopOptions);
      return stopped;
    },
  };
}

/**
 * Hands each message of a fetched batch to the intake, in offset order, and moves kafkajs' fetch position past the
 * messages taken in. A message not taken in (no room, revoked, stopping) ends the batch: it is fetched again later.
 * The hot loop of the filter path: the fetch position moves once per batch (kafkajs parses and prints a 64-bit offset
 * each time), and whether the batch is still current is asked again only after something was awaited.
 */
async function handBatchOver<P>(
  payload: EachBatchPayload,
  intake: Intake<InboundMessage, P>,
  metrics: Metrics | undefined,
): Promise<void> {
  const { batch } = payload;
  const id = partitionId(batch.topic, batch.partition);
  const heartbeat = { heartbeat: () => payload.heartbeat() };
  const current = () => payload.isRunning() && !payload.isStale();
  let taken: string | undefined;
  try {
    let awaited = true;
    for (const message of batch.messages) {
      if (awaited && !current()) break;
      awaited = false;
      const offset = BigInt(message.offset);
      let admitted = intake.admits(id, offset);
      if (admitted === 'full') {
        admitted = await intake.roomFor(id, offset);
        awaited = true;
      }
      if (admitted === 'full' || admitted === 'unassigned') break;
      if (admitted === 'accepted') {
        let prepared = intake.prepare(inbound(batch.topic, batch.partition, message), heartbeat);
        if (prepared instanceof Promise) {
          awaited = true;
          try {
            prepared = await prepared;
          } catch (error) {
            if (error instanceof ShutdownError) break;
            throw error;
          }
        }
        if (intake.offer(id, offset, prepared) !== 'accepted') break;
      }
      taken = message.offset;
    }
  } finally {
    if (taken !== undefined) payload.resolveOffset(taken);
  }
  metrics?.consumerLag.set(
    { topic: batch.topic, partition: String(batch.partition) },
    Number(batch.offsetLag()),
  );
  intake.afterBatch();
  await payload.heartbeat();
}

/** What the intake may ask of the consumer: pause, resume (while `live`), commit. */
function sourceOf(consumer: Consumer, logger: Logger, live: () => boolean): Source {
  return {
    get canPause() {
      return live();
    },
    pause: (ids) => consumer.pause(toTopicPartitions(ids)),
    resume: (ids) => consumer.resume(toTopicPartitions(ids)),
    async commit(marks) {
      const offsets = [...marks].map(([id, mark]) => ({ ...parsePartitionId(id), offset: mark.toString() }));
      await consumer.commitOffsets(offsets);
      logger.debug({ offsets }, 'offsets committed');
    },
  };
}

function createConsumer(
  kafka: Kafka,
  groupId: string,
  sessionTimeout: number | undefined,
  mayRestart: () => boolean,
): Consumer {
  return kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    // The heartbeat must come well within the session timeout, or a healthy member is evicted.
    ...(sessionTimeout !== undefined && {
      sessionTimeout,
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
    }),
    // With every partition paused, kafkajs sleeps this long before it looks again: a resumed partition would idle
    // for up to kafkajs' default 5 s. 1 s is still a long poll (the Java client's default is 0.5 s).
    maxWaitTimeInMs: 1_000,
    retry: {
      retries: 5,
      // kafkajs restarts a consumer that lost the broker, on a timer, forever; once stopping, a restart would rejoin
      // the group with a pipeline that no longer runs (and keep the process alive).
      restartOnFailure: () => Promise.resolve(mayRestart()),
    },
  });
}

function inbound(topic: string, partition: number, message: KafkaMessage): InboundMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    headers: message.headers ?? {},
    timestamp: message.timestamp,
  };
}

/** Topic names cannot hold ':', so `topic:partition` is unambiguous. */
function partitionId(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

function parsePartitionId(id: string): { topic: string; partition: number } {
  const colon = id.lastIndexOf(':');
  return { topic: id.slice(0, colon), partition: Number(id.slice(colon + 1)) };
}

function toTopicPartitions(ids: readonly string[]): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const id of ids) {
    const { topic, partition } = parsePartitionId(id);
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
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
