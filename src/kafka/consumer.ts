import type { Consumer, Kafka, TopicPartitions } from 'kafkajs';
import { BridgeError, ShutdownError } from '../errors.js';
import type { Health } from '../health.js';
// eslint-disable-next-line no-restricted-imports -- the last layer violation: the delivery runner (next commit) takes it out
import { Scheduler, type Entry, type SchedulerLimits } from '../delivery/scheduler.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { InboundMessage } from './message.js';

/** What the consumer hands the pipeline along with each message. */
export interface DeliveryHooks {
  /** Keeps the group membership during long waits. */
  readonly heartbeat: () => Promise<void>;
  /** The event waits (backoff, pause probe): its concurrency slot is lent to other keys meanwhile. */
  readonly waiting: (waiting: boolean) => void;
}

/**
 * An event decoded and matched, before any delivery: what the scheduler needs to order it. Preparing runs in the fetch
 * loop in offset order, so that ordering keys can come from the event itself (a rule's `orderingKey`).
 */
export interface PreparedEvent {
  /** The ordering keys of its deliveries; empty: nothing to keep in order. */
  readonly orderingKeys: readonly string[];
  /** Nothing to deliver (it matched no rule, a tombstone): its offset is final at once, it takes no slot. */
  readonly settled: boolean;
  /**
   * Resolves when every delivery's outcome is final; only then may the watermark move past it. Rejects with
   * ShutdownError when stopped before that (the event is then redelivered); any other rejection is a defect.
   */
  run(hooks: DeliveryHooks): Promise<void>;
  /** It will not run here after all (its partition was revoked, the bridge stopped): it is fetched again later. */
  drop(): void;
}

export interface ConsumerOptions {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  /** kafkajs' default (30 s) when absent. */
  readonly sessionTimeoutMs?: number;
  readonly logger: Logger;
  readonly limits: SchedulerLimits;
  /** How often the watermark of each partition is committed (and once more at shutdown). */
  readonly commitIntervalMs: number;
  /** While it reports a pause, no new event starts and fetching pauses. */
  readonly health: Health;
  readonly metrics?: Metrics;
  /**
   * Decodes and matches one message, in offset order within its partition. Rejects with ShutdownError when stopped
   * first (the message is then fetched again); a rejection with anything else leaves the batch to kafkajs (a rebalance
   * thrown by the heartbeat).
   */
  readonly prepare: (
    message: InboundMessage,
    hooks: Pick<DeliveryHooks, 'heartbeat'>,
  ) => Promise<PreparedEvent>;
  /** Called when kafkajs gives up on the consumer for good: the process must not live on as a zombie. */
  readonly onCrash: (error: Error) => void;
}

export interface ConsumerState {
  /** A member of the group with an assignment (false while rebalancing). */
  readonly joined: boolean;
  readonly stopping: boolean;
  /** Set when the consumer died for good. */
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
  /** Stops fetching, lets in-flight deliveries finish (within the grace), commits the watermark, leaves the group. */
  stop(options: StopOptions): Promise<void>;
}

/**
 * How long eachBatch waits for a full partition queue to drain before it pauses the partition instead. Long enough
 * for events that finish fast (most match no rule) to free half the queue; short next to a Genesys call.
 */
const ROOM_WAIT_MS = 50;

/** After the grace, aborted deliveries get this long to unwind before the consumer leaves anyway. */
const UNWIND_MS = 5_000;

/**
 * The consumer group side. kafkajs fetches; each fetched message is prepared (decoded, matched), offered to the
 * scheduler, and kafkajs' fetch position moves past it at once (resolveOffset), while the committed offset follows only
 * the scheduler's watermark
 * (autoCommit off, explicit commitOffsets). eachBatch returns without waiting for deliveries, so kafkajs' own loop keeps
 * heartbeating however long Genesys calls take; when a partition has too much unfinished work its fetching pauses.
 */
export async function startConsumer(options: ConsumerOptions): Promise<RunningConsumer> {
  const { kafka, groupId, topics, fromBeginning, logger, health } = options;
  const sessionTimeout = options.sessionTimeoutMs;
  const consumer = kafka.consumer({
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
      restartOnFailure: () => Promise.resolve(!stopping),
    },
  });
  const scheduler = new Scheduler<PreparedEvent>(options.limits);
  const fetchPaused = new Set<string>();
  const committed = new Map<string, bigint>();
  const idleWaiters = new Set<() => void>();
  let running = false;
  let joined = false;
  let stopping = false;
  let crashed: Error | undefined;
  let disconnected: ConsumerState['disconnected'];

  const noHeartbeatNeeded = () => Promise.resolve();

  const roomWaiters = new Set<() => void>();
  const pump = () => {
    for (const entry of scheduler.take()) deliver(entry);
    if (scheduler.idle) for (const wake of idleWaiters) wake();
    for (const wake of roomWaiters) wake();
  };

  /**
   * Resolves true once `id` has room again, or false after `ms`. Events that finish fast (most events match no rule)
   * free a full queue in milliseconds; waiting that long in eachBatch beats pausing the partition, after which kafkajs
   * idles up to maxWaitTimeInMs before it fetches again.
   */
  const roomIn = (id: string, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (scheduler.hasRoom(id)) return resolve(true);
      const done = (room: boolean) => {
        clearTimeout(timer);
        roomWaiters.delete(check);
        resolve(room);
      };
      const check = () => {
        if (scheduler.hasRoom(id)) done(true);
      };
      const timer = setTimeout(() => done(false), ms);
      roomWaiters.add(check);
    });

  const deliver = (entry: Entry<PreparedEvent>) => {
    const hooks: DeliveryHooks = {
      heartbeat: noHeartbeatNeeded,
      waiting: (waiting) => {
        scheduler.setWaiting(entry, waiting);
        if (waiting) pump();
      },
    };
    entry.message
      .run(hooks)
      .then(
        () => scheduler.complete(entry),
        (error: unknown) => {
          scheduler.abandon(entry);
          if (error instanceof ShutdownError) return;
          // The pipeline turns every failure into an outcome; anything else is a defect. Stopping for good is the only
          // safe answer: going on would either skip the event or hold its partition forever.
          crashed = error instanceof Error ? error : new Error(String(error));
          logger.fatal(
            { err: error, event: { partition: entry.partition, offset: String(entry.offset) } },
            'delivery failed unexpectedly',
          );
          options.onCrash(crashed);
        },
      )
      .finally(() => {
        pump();
        reconcileFetching();
        commitIfCaughtUp();
      });
  };

  const pauseFetching = (ids: string[]) => {
    consumer.pause(toTopicPartitions(ids));
    for (const id of ids) fetchPaused.add(id);
    logger.debug({ partitions: ids }, 'fetching paused');
  };

  /**
   * A batch cut short for want of room pauses its partition at once; reconcileFetching then keeps it paused until half
   * its queue is free. Left to reconcileFetching alone, one event finishing in between would let kafkajs fetch the
   * partition again at once: a megabyte of records decoded to take in the one that fits, again and again.
   */
  const cutBatchShort = (id: string, left: number) => {
    logger.debug(
      { partition: id, left },
      'batch cut short: the partition has no room, fetching it again later',
    );
    if (!fetchPaused.has(id)) pauseFetching([id]);
  };

  /** Pauses fetching where nothing new may start or there is no room; resumes it where there is room again. */
  const reconcileFetching = () => {
    // While kafkajs restarts the consumer it has no group to pause or resume partitions of (it throws).
    if (!running || disconnected) return;
    const pause: string[] = [];
    const resume: string[] = [];
    for (const id of scheduler.partitions) {
      const wasPaused = fetchPaused.has(id);
      const shouldPause =
        stopping ||
        health.paused !== undefined ||
        scheduler.isFull(id) ||
        (wasPaused && !scheduler.hasRoom(id));
      if (shouldPause && !wasPaused) pause.push(id);
      if (!shouldPause && wasPaused) resume.push(id);
    }
    if (pause.length > 0) pauseFetching(pause);
    if (resume.length > 0) {
      consumer.resume(toTopicPartitions(resume));
      for (const id of resume) fetchPaused.delete(id);
      logger.debug({ partitions: resume }, 'fetching resumed');
    }
  };

  health.onChange((paused) => {
    scheduler.paused = paused !== undefined;
    reconcileFetching();
    if (!paused) pump();
  });
  scheduler.paused = health.paused !== undefined;

  let committing: Promise<void> = Promise.resolve();
  const commit = async () => {
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    const marks = new Map<string, bigint>();
    for (const id of scheduler.partitions) {
      const mark = scheduler.watermark(id);
      if (mark === undefined || mark === committed.get(id)) continue;
      marks.set(id, mark);
      offsets.push({ ...parsePartitionId(id), offset: mark.toString() });
    }
    if (offsets.length === 0) return;
    await consumer.commitOffsets(offsets);
    for (const [id, mark] of marks) {
      // A partition revoked while the commit was under way is not ours to track any more.
      if (scheduler.partitions.includes(id)) committed.set(id, mark);
    }
    logger.debug({ offsets }, 'offsets committed');
  };
  // At most one commit waits behind the one under way: it reads the watermarks when it runs, so it covers every call.
  let commitQueued: Promise<void> | undefined;
  const commitNow = (): Promise<void> => {
    commitQueued ??= committing = committing
      .then(() => {
        commitQueued = undefined;
        return commit();
      })
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'committing offsets failed; the next commit retries');
      });
    return commitQueued;
  };
  /**
   * Commits at once when nothing is left unfinished (a burst is done, or every event matched no rule), so that the
   * committed offset does not trail the work by up to the commit interval; under steady load the interval paces it.
   */
  const commitIfCaughtUp = () => {
    if (running && !stopping && scheduler.unfinished === 0) void commitNow();
  };

  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (restart) {
      options.metrics?.consumerRestarts.inc();
      // The restarted consumer starts with nothing paused; GROUP_JOIN then pauses again what must be.
      fetchPaused.clear();
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
    const assigned = new Set(
      Object.entries(assignment).flatMap(([topic, partitions]) =>
        partitions.map((p) => partitionId(topic, p)),
      ),
    );
    for (const id of scheduler.partitions) {
      if (assigned.has(id)) continue;
      // Revoked: its queued events are another member's now; what still runs here commits nothing.
      const dropped = scheduler.revoke(id);
      for (const entry of dropped) entry.message.drop();
      committed.delete(id);
      if (fetchPaused.delete(id)) consumer.resume(toTopicPartitions([id]));
      logger.info({ partition: id, dropped: dropped.length }, 'partition revoked');
    }
    for (const id of assigned) scheduler.assign(id);
    joined = true;
    disconnected = undefined;
    logger.info({ groupId, memberId: event.payload.memberId, assignment }, 'joined consumer group');
    reconcileFetching();
  });

  await assertTopicsExist(kafka, topics);
  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async (payload) => {
      const { batch } = payload;
      const id = partitionId(batch.topic, batch.partition);
      for (let i = 0; i < batch.messages.length; i++) {
        const message = batch.messages[i];
        if (!message || !payload.isRunning() || payload.isStale()) break;
        const offset = BigInt(message.offset);
        let admitted = scheduler.admits(id, offset);
        if (admitted === 'full' && !stopping && health.paused === undefined) {
          pump();
          if (await roomIn(id, ROOM_WAIT_MS)) admitted = scheduler.admits(id, offset);
        }
        // Not taken in: leave the fetch position here, so that it is fetched again once there is room.
        if (admitted === 'full') cutBatchShort(id, batch.messages.length - i);
        if (admitted === 'full' || admitted === 'unassigned') break;
        if (admitted === 'duplicate') {
          payload.resolveOffset(message.offset);
          continue;
        }
        let prepared: PreparedEvent;
        try {
          prepared = await options.prepare(
            {
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              key: message.key,
              value: message.value,
              headers: message.headers ?? {},
              timestamp: message.timestamp,
            },
            { heartbeat: () => payload.heartbeat() },
          );
        } catch (error) {
          if (error instanceof ShutdownError) break;
          throw error;
        }
        // Preparing may have waited (a registry outage): the partition may be gone or stopping since.
        const result = prepared.settled
          ? scheduler.settle(id, offset)
          : scheduler.offer(id, offset, prepared.orderingKeys, prepared);
        if (result !== 'accepted') prepared.drop();
        if (result === 'full') cutBatchShort(id, batch.messages.length - i);
        if (result === 'full' || result === 'unassigned') break;
        payload.resolveOffset(message.offset);
        // Started now rather than after the whole batch is prepared: a large batch would delay its first event.
        if (!prepared.settled) pump();
      }
      options.metrics?.consumerLag.set(
        { topic: batch.topic, partition: String(batch.partition) },
        Number(batch.offsetLag()),
      );
      pump();
      reconcileFetching();
      commitIfCaughtUp();
      await payload.heartbeat();
    },
  });
  running = true;
  reconcileFetching();
  const commitTimer = setInterval(() => void commitNow(), options.commitIntervalMs);
  commitTimer.unref();

  const untilIdle = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (scheduler.idle) return resolve(true);
      const done = (idle: boolean) => {
        clearTimeout(timer);
        idleWaiters.delete(wake);
        resolve(idle);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(scheduler.idle), ms);
      idleWaiters.add(wake);
    });

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
    scheduler.drain();
    reconcileFetching();
    pump();
    if (!(await untilIdle(graceMs))) {
      logger.warn(
        { running: scheduler.running },
        'grace period over: aborting deliveries still running (they are redelivered)',
      );
      onGraceOver();
      await untilIdle(unwindMs);
    }
    clearInterval(commitTimer);
    for (const entry of scheduler.queued()) entry.message.drop();
    // Must happen before disconnect: kafkajs ignores commits from a consumer that stopped running.
    await commitNow();
    const left = scheduler.unfinished;
    if (left > 0)
      logger.info({ unfinished: left }, 'events not final at shutdown are redelivered on restart');
    await consumer.disconnect();
    running = false;
  };

  return {
    consumer,
    state: () => ({ joined, stopping, crashed, disconnected }),
    stop(stopOptions) {
      stopped ??= stop(stopOptions);
      return stopped;
    },
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
