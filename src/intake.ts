/**
 * The contract between the Kafka consumer (src/kafka/consumer.ts) and the delivery runner (src/delivery/runner.ts),
 * in Redpanda Connect's spirit (`Read(ctx) (*Message, AckFunc, error)`): the consumer hands each fetched message over
 * in offset order and is told, through `Source.commit`, when offsets may be committed. Neither side imports the other;
 * the bridge plugs them together. A partition is named `topic:partition` (topic names cannot hold ':').
 */

/** Whether a fetched offset may be taken in now. */
export type Admission = 'accepted' | 'full' | 'duplicate' | 'unassigned';

/** What the delivery runner does for the consumer. `M`: the consumed message; `P`: the message prepared. */
export interface Intake<M, P> {
  /** Whether `offset` of `partition` may be taken in now (sync, per message). */
  admits(partition: string, offset: bigint): Admission;
  /**
   * The partition is full: waits a moment for room (events that finish fast free a queue in milliseconds), then tells
   * again. A partition still full is paused by the runner until half its queue is free.
   */
  roomFor(partition: string, offset: bigint): Promise<Admission>;
  /**
   * Decodes and matches one message, in offset order within its partition; synchronous when it needs no wait (most
   * messages). Rejects with ShutdownError when stopped first (the message is then fetched again); anything else is
   * what the heartbeat threw (a rebalance).
   */
  prepare(message: M, hooks: { readonly heartbeat: () => Promise<void> }): P | Promise<P>;
  /**
   * Takes the prepared message in: its offset is committed once its outcome is final. Anything but 'accepted': it
   * was not taken (full: its partition is paused; unassigned: revoked meanwhile) and is fetched again.
   */
  offer(partition: string, offset: bigint, prepared: P): Admission;
  /** A fetched batch is done: start what may start, pause or resume fetching, commit if caught up. */
  afterBatch(): void;
  /** The group assignment now (after a join): partitions no longer in it are revoked, their queued events dropped. */
  assigned(partitions: ReadonlySet<string>): void;
  /** The consumer restarted (kafkajs lost the broker): nothing is paused on the new one. */
  restarted(): void;
  /** Stops taking events in, lets in-flight ones finish (within the grace), and makes the final commit. */
  stop(options: DrainOptions): Promise<void>;
  /** Set when a delivery failed in a way the runner cannot turn into an outcome (a defect): the process must stop. */
  readonly crashed: Error | undefined;
}

export interface DrainOptions {
  /** How long in-flight deliveries may run on. */
  readonly graceMs: number;
  /** How long aborted deliveries may unwind after the grace. */
  readonly unwindMs: number;
  /** Called when the grace period is over and deliveries are still running: abort them. */
  readonly onGraceOver: () => void;
}

/** What the Kafka consumer does for the delivery runner. */
export interface Source {
  /** False while the consumer is not running or kafkajs restarts it: it has no group to pause or resume in. */
  readonly canPause: boolean;
  pause(partitions: readonly string[]): void;
  resume(partitions: readonly string[]): void;
  /** Commits these next offsets to read (the watermark of completed offsets), per partition. */
  commit(offsets: ReadonlyMap<string, bigint>): Promise<void>;
}
