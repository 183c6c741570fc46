import { ShutdownError } from '../errors.js';
import type { Health } from '../health.js';
import type { Admission, DrainOptions, Intake, Source } from '../intake.js';
import type { Waits } from '../wait.js';
import type { Logger } from '../telemetry/logger.js';
import { Scheduler, type Entry, type SchedulerLimits } from './scheduler.js';

/**
 * An event decoded and matched, before any delivery: what the runner needs to order it. Preparing runs in the fetch
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
   * `waits.waiting`: the event waits (backoff, pause probe), its concurrency slot is lent to other keys meanwhile.
   */
  run(waits: Required<Pick<Waits, 'heartbeat' | 'waiting'>>): Promise<void>;
  /** It will not run here after all (its partition was revoked, the bridge stopped): it is fetched again later. */
  drop(): void;
}

export interface RunnerOptions<M> {
  readonly limits: SchedulerLimits;
  /** How often the watermark of each partition is committed (and once more at shutdown). */
  readonly commitIntervalMs: number;
  /** While it reports a pause, no new event starts and fetching pauses. */
  readonly health: Health;
  readonly logger: Logger;
  /** Decodes and matches one message (the pipeline's plan). */
  readonly prepare: Intake<M, PreparedEvent>['prepare'];
  /** A delivery failed in a way no outcome covers (a defect): the process must not go on. */
  readonly onCrash: (error: Error) => void;
}

/**
 * How long the fetch loop waits for a full partition queue to drain before the partition is paused instead. Long
 * enough for events that finish fast (most match no rule) to free half the queue; short next to a Genesys call.
 */
const ROOM_WAIT_MS = 50;

const noHeartbeatNeeded = () => Promise.resolve();

/**
 * The delivery side of the engine: the scheduler (ordering keys, in-flight limits), the offset watermark and the
 * commit cadence. The consumer hands it each fetched message (Intake); it tells the consumer what to pause, resume and
 * commit (Source). Events run without the fetch loop waiting for them, so kafkajs keeps heartbeating however long
 * Genesys calls take.
 */
export class DeliveryRunner<M> implements Intake<M, PreparedEvent> {
  readonly prepare: RunnerOptions<M>['prepare'];
  readonly #options: RunnerOptions<M>;
  readonly #scheduler: Scheduler<PreparedEvent>;
  readonly #logger: Logger;
  /** Partitions whose fetching this runner paused. */
  readonly #fetchPaused = new Set<string>();
  readonly #committed = new Map<string, bigint>();
  readonly #roomWaiters = new Set<() => void>();
  readonly #idleWaiters = new Set<() => void>();
  #source: Source | undefined;
  #started = false;
  #stopping = false;
  #crashed: Error | undefined;
  #commitTimer: NodeJS.Timeout | undefined;
  #committing: Promise<void> = Promise.resolve();
  #commitQueued: Promise<void> | undefined;

  constructor(options: RunnerOptions<M>) {
    this.#options = options;
    this.prepare = options.prepare;
    this.#logger = options.logger;
    this.#scheduler = new Scheduler<PreparedEvent>(options.limits);
    const { health } = options;
    this.#scheduler.paused = health.paused !== undefined;
    health.onChange((paused) => {
      this.#scheduler.paused = paused !== undefined;
      this.#reconcileFetching();
      if (!paused) this.#pump();
    });
  }

  get crashed(): Error | undefined {
    return this.#crashed;
  }

  /** The consumer that feeds this runner: it pauses, resumes (once `canPause`) and commits through it. */
  attach(source: Source): void {
    this.#source = source;
  }

  /** The consumer runs: fetching is reconciled and the commit cadence starts. */
  start(): void {
    this.#started = true;
    this.#reconcileFetching();
    this.#commitTimer = setInterval(() => void this.#commitNow(), this.#options.commitIntervalMs);
    this.#commitTimer.unref();
  }

  admits(partition: string, offset: bigint): Admission {
    return this.#scheduler.admits(partition, offset);
  }

  async roomFor(partition: string, offset: bigint): Promise<Admission> {
    let admitted: Admission = 'full';
    if (!this.#stopping && this.#options.health.paused === undefined) {
      this.#pump();
      if (await this.#roomIn(partition, ROOM_WAIT_MS)) admitted = this.#scheduler.admits(partition, offset);
    }
    if (admitted === 'full') this.#cutBatchShort(partition, offset);
    return admitted;
  }

  offer(partition: string, offset: bigint, prepared: PreparedEvent): Admission {
    // Preparing may have waited (a registry outage): the partition may be gone or stopping since.
    const result = prepared.settled
      ? this.#scheduler.settle(partition, offset)
      : this.#scheduler.offer(partition, offset, prepared.orderingKeys, prepared);
    if (result !== 'accepted') prepared.drop();
    if (result === 'full') this.#cutBatchShort(partition, offset);
    // Started now rather than after the whole batch is prepared: a large batch would delay its first event.
    else if (result === 'accepted' && !prepared.settled) this.#pump();
    return result;
  }

  afterBatch(): void {
    this.#pump();
    this.#reconcileFetching();
    this.#commitIfCaughtUp();
  }

  assigned(partitions: ReadonlySet<string>): void {
    for (const id of this.#scheduler.partitions) {
      if (partitions.has(id)) continue;
      // Revoked: its queued events are another member's now; what still runs here commits nothing.
      const dropped = this.#scheduler.revoke(id);
      for (const entry of dropped) entry.message.drop();
      this.#committed.delete(id);
      if (this.#fetchPaused.delete(id)) this.#source?.resume([id]);
      this.#logger.info({ partition: id, dropped: dropped.length }, 'partition revoked');
    }
    for (const id of partitions) this.#scheduler.assign(id);
    this.#reconcileFetching();
  }

  restarted(): void {
    // The restarted consumer starts with nothing paused; the next join pauses again what must be.
    this.#fetchPaused.clear();
  }

  async stop({ graceMs, unwindMs, onGraceOver }: DrainOptions): Promise<void> {
    this.#stopping = true;
    const scheduler = this.#scheduler;
    scheduler.drain();
    this.#reconcileFetching();
    this.#pump();
    if (!(await this.#untilIdle(graceMs))) {
      this.#logger.warn(
        { running: scheduler.running },
        'grace period over: aborting deliveries still running (they are redelivered)',
      );
      onGraceOver();
      await this.#untilIdle(unwindMs);
    }
    clearInterval(this.#commitTimer);
    for (const entry of scheduler.queued()) entry.message.drop();
    // Must happen before the consumer disconnects: kafkajs ignores commits from a consumer that stopped running.
    await this.#commitNow();
    const left = scheduler.unfinished;
    if (left > 0)
      this.#logger.info({ unfinished: left }, 'events not final at shutdown are redelivered on restart');
  }

  #pump(): void {
    const scheduler = this.#scheduler;
    for (const entry of scheduler.take()) this.#deliver(entry);
    if (scheduler.idle) for (const wake of this.#idleWaiters) wake();
    for (const wake of this.#roomWaiters) wake();
  }

  #deliver(entry: Entry<PreparedEvent>): void {
    const scheduler = this.#scheduler;
    const waits = {
      heartbeat: noHeartbeatNeeded,
      waiting: (waiting: boolean) => {
        scheduler.setWaiting(entry, waiting);
        if (waiting) this.#pump();
      },
    };
    entry.message
      .run(waits)
      .then(
        () => scheduler.complete(entry),
        (error: unknown) => {
          scheduler.abandon(entry);
          if (error instanceof ShutdownError) return;
          // The pipeline turns every failure into an outcome; anything else is a defect. Stopping for good is the only
          // safe answer: going on would either skip the event or hold its partition forever.
          this.#crashed = error instanceof Error ? error : new Error(String(error));
          this.#logger.fatal(
            { err: error, event: { partition: entry.partition, offset: String(entry.offset) } },
            'delivery failed unexpectedly',
          );
          this.#options.onCrash(this.#crashed);
        },
      )
      .finally(() => {
        this.#pump();
        this.#reconcileFetching();
        this.#commitIfCaughtUp();
      });
  }

  /**
   * Resolves true once `id` has room again, or false after `ms`. Waiting that long in the fetch loop beats pausing the
   * partition, after which kafkajs idles up to its max wait before it fetches again.
   */
  #roomIn(id: string, ms: number): Promise<boolean> {
    const scheduler = this.#scheduler;
    return new Promise<boolean>((resolve) => {
      if (scheduler.hasRoom(id)) return resolve(true);
      const done = (room: boolean) => {
        clearTimeout(timer);
        this.#roomWaiters.delete(check);
        resolve(room);
      };
      const check = () => {
        if (scheduler.hasRoom(id)) done(true);
      };
      const timer = setTimeout(() => done(false), ms);
      this.#roomWaiters.add(check);
    });
  }

  #untilIdle(ms: number): Promise<boolean> {
    const scheduler = this.#scheduler;
    return new Promise<boolean>((resolve) => {
      if (scheduler.idle) return resolve(true);
      const done = (idle: boolean) => {
        clearTimeout(timer);
        this.#idleWaiters.delete(wake);
        resolve(idle);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(scheduler.idle), ms);
      this.#idleWaiters.add(wake);
    });
  }

  #pauseFetching(ids: string[]): void {
    this.#source?.pause(ids);
    for (const id of ids) this.#fetchPaused.add(id);
    this.#logger.debug({ partitions: ids }, 'fetching paused');
  }

  /**
   * A batch cut short for want of room pauses its partition at once; reconcileFetching then keeps it paused until half
   * its queue is free. Left to reconcileFetching alone, one event finishing in between would let kafkajs fetch the
   * partition again at once: a megabyte of records decoded to take in the one that fits, again and again.
   */
  #cutBatchShort(id: string, offset: bigint): void {
    this.#logger.debug(
      { partition: id, offset: String(offset) },
      'batch cut short: the partition has no room, fetching it again later',
    );
    if (!this.#fetchPaused.has(id) && this.#source?.canPause) this.#pauseFetching([id]);
  }

  /** Pauses fetching where nothing new may start or there is no room; resumes it where there is room again. */
  #reconcileFetching(): void {
    const source = this.#source;
    // While kafkajs restarts the consumer it has no group to pause or resume partitions of (it throws).
    if (!source?.canPause) return;
    const scheduler = this.#scheduler;
    const pause: string[] = [];
    const resume: string[] = [];
    for (const id of scheduler.partitions) {
      const wasPaused = this.#fetchPaused.has(id);
      const shouldPause =
        this.#stopping ||
        this.#options.health.paused !== undefined ||
        scheduler.isFull(id) ||
        (wasPaused && !scheduler.hasRoom(id));
      if (shouldPause && !wasPaused) pause.push(id);
      if (!shouldPause && wasPaused) resume.push(id);
    }
    if (pause.length > 0) this.#pauseFetching(pause);
    if (resume.length > 0) {
      source.resume(resume);
      for (const id of resume) this.#fetchPaused.delete(id);
      this.#logger.debug({ partitions: resume }, 'fetching resumed');
    }
  }

  async #commit(source: Source): Promise<void> {
    const scheduler = this.#scheduler;
    const marks = new Map<string, bigint>();
    for (const id of scheduler.partitions) {
      const mark = scheduler.watermark(id);
      if (mark !== undefined && mark !== this.#committed.get(id)) marks.set(id, mark);
    }
    if (marks.size === 0) return;
    await source.commit(marks);
    for (const [id, mark] of marks) {
      // A partition revoked while the commit was under way is not ours to track any more.
      if (scheduler.partitions.includes(id)) this.#committed.set(id, mark);
    }
  }

  /** At most one commit waits behind the one under way: it reads the watermarks when it runs, so it covers every call. */
  #commitNow(): Promise<void> {
    const source = this.#source;
    if (!source) return Promise.resolve();
    this.#commitQueued ??= this.#committing = this.#committing
      .then(() => {
        this.#commitQueued = undefined;
        return this.#commit(source);
      })
      .catch((error: unknown) => {
        this.#logger.warn({ err: error }, 'committing offsets failed; the next commit retries');
      });
    return this.#commitQueued;
  }

  /**
   * Commits at once when nothing is left unfinished (a burst is done, or every event matched no rule), so that the
   * committed offset does not trail the work by up to the commit interval; under steady load the interval paces it.
   */
  #commitIfCaughtUp(): void {
    if (this.#started && !this.#stopping && this.#scheduler.unfinished === 0) void this.#commitNow();
  }
}
