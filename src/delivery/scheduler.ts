/**
 * Key-ordered concurrency with an offset watermark, as plain data (no Kafka, no timers).
 *
 * Within a partition, events with different ordering keys run concurrently; events that share a key run strictly in
 * offset order (the next one starts only once the previous one is final). An event may carry several keys (one per
 * rule it matched, each rule choosing its own `orderingKey`): it starts once it is first in line for every one of
 * them. An event with no key has no order to keep (a null Kafka key: Kafka's partitioners spread key-less records over
 * partitions anyway), so it runs on its own.
 *
 * A partition's commit offset is its watermark: the lowest offset not yet final (or one past the highest accepted
 * offset when everything is final). Committing it never skips an unfinished event, whatever finished after it
 * (Confluent Parallel Consumer's idea).
 *
 * An event that waits (retry backoff, a paused Genesys) gives its concurrency slot back but keeps its key blocked, so
 * a key waiting on retries holds back only that key.
 */

export interface SchedulerLimits {
  /** Events running at once in one partition. */
  readonly maxInFlightPerPartition: number;
  /** Events running at once across all partitions. */
  readonly maxInFlight: number;
  /** Events accepted but not final in one partition; past it the partition is full (fetching should pause). */
  readonly maxQueuedPerPartition: number;
}

export type EntryState = 'queued' | 'running' | 'waiting' | 'final';

export interface Entry<M> {
  readonly partition: string;
  readonly offset: bigint;
  /** Distinct ordering keys; empty: no ordering to keep. */
  readonly keys: readonly string[];
  readonly message: M;
  state: EntryState;
  /** How many of its keys have an earlier entry not yet final: it may start at 0. */
  blockers: number;
}

export type OfferResult =
  /** Taken in; the caller may advance its fetch position past it. */
  | 'accepted'
  /** Already taken in (a re-fetch after a rebalance): skip it, but the fetch position may advance. */
  | 'duplicate'
  /** No room: leave it for a later fetch. */
  | 'full'
  /** The partition is not assigned (or no longer): drop it. */
  | 'unassigned';

interface PartitionState<M> {
  /** Every accepted entry not yet swept, in offset order; the first non-final one is the watermark. */
  readonly log: Entry<M>[];
  /** Per key, its entries not yet final, in offset order; the first may run, the others wait for it. */
  readonly keys: Map<string, Entry<M>[]>;
  /** Entries that may start (first in line for each of their keys), in offset order. */
  readonly runnable: Entry<M>[];
  /** One past the highest accepted offset. */
  next: bigint | undefined;
  /** The highest offset that has started; while draining, only gaps below it are filled. */
  highestStarted: bigint | undefined;
  running: number;
  unfinished: number;
}

export class Scheduler<M> {
  readonly #limits: SchedulerLimits;
  /** The partition state each entry was accepted into. */
  readonly #owner = new WeakMap<Entry<M>, PartitionState<M>>();
  readonly #partitions = new Map<string, PartitionState<M>>();
  #running = 0;
  #paused = false;
  #draining = false;
  /** Where take() starts looking, so that no partition starves the others. */
  #cursor = 0;

  constructor(limits: SchedulerLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
    }
    this.#limits = limits;
  }

  /** Starts tracking a partition (a no-op when it is tracked already: a rebalance that kept it). */
  assign(partition: string): void {
    if (this.#partitions.has(partition)) return;
    this.#partitions.set(partition, {
      log: [],
      keys: new Map(),
      runnable: [],
      next: undefined,
      highestStarted: undefined,
      running: 0,
      unfinished: 0,
    });
  }

  /**
   * Forgets a partition: its queued events are dropped (they are not ours any more), and its running events, when they
   * finish, move no watermark. Returns the queued entries it dropped.
   */
  revoke(partition: string): Entry<M>[] {
    const state = this.#partitions.get(partition);
    if (!state) return [];
    this.#partitions.delete(partition);
    const dropped: Entry<M>[] = [];
    for (const entry of state.log) {
      if (entry.state === 'queued') dropped.push(entry);
      if (entry.state === 'running') this.#running -= 1;
    }
    return dropped;
  }

  /** Entries accepted but never started, over every partition: what a stop leaves to be redelivered. */
  queued(): Entry<M>[] {
    return [...this.#partitions.values()].flatMap((state) => state.log.filter((e) => e.state === 'queued'));
  }

  get partitions(): string[] {
    return [...this.#partitions.keys()];
  }

  /** What offer() would answer now, without taking anything in: checked before the work of preparing an event. */
  admits(partition: string, offset: bigint): OfferResult {
    const state = this.#acceptor(partition, offset);
    if (typeof state === 'string') return state;
    return this.#hasQueueRoom(state) ? 'accepted' : 'full';
  }

  #hasQueueRoom(state: PartitionState<M>): boolean {
    return state.unfinished < this.#limits.maxQueuedPerPartition;
  }

  /** The partition that may take in `offset`, or why none may (queue room aside). */
  #acceptor(partition: string, offset: bigint): PartitionState<M> | 'unassigned' | 'duplicate' {
    const state = this.#partitions.get(partition);
    if (!state || this.#draining) return 'unassigned';
    if (state.next !== undefined && offset < state.next) return 'duplicate';
    return state;
  }

  /** Offers an event with its ordering keys (see the class comment). */
  offer(partition: string, offset: bigint, keys: readonly string[], message: M): OfferResult {
    const state = this.#acceptor(partition, offset);
    if (typeof state === 'string') return state;
    if (!this.#hasQueueRoom(state)) return 'full';
    const distinct = keys.length > 1 ? [...new Set(keys)] : keys;
    const entry: Entry<M> = { partition, offset, keys: distinct, message, state: 'queued', blockers: 0 };
    this.#owner.set(entry, state);
    state.log.push(entry);
    state.next = offset + 1n;
    state.unfinished += 1;
    for (const key of distinct) {
      const queue = state.keys.get(key);
      if (queue) {
        queue.push(entry);
        entry.blockers += 1;
      } else {
        state.keys.set(key, [entry]);
      }
    }
    if (entry.blockers === 0) state.runnable.push(entry);
    return 'accepted';
  }

  /**
   * Takes in an event that needs no work (it matched no rule): final at once, so only the watermark moves past it. The
   * fast path of most events, which never cost a scheduling slot.
   */
  settle(partition: string, offset: bigint): OfferResult {
    // Not bounded by the queue: it adds nothing to it.
    const state = this.#acceptor(partition, offset);
    if (typeof state === 'string') return state;
    // Nothing to record: the watermark is the first unfinished entry of the log, or else `next`.
    state.next = offset + 1n;
    return 'accepted';
  }

  /** The entries that may start now, marked running. Nothing while paused. */
  take(): Entry<M>[] {
    const started: Entry<M>[] = [];
    if (this.#paused) return started;
    const states = [...this.#partitions.values()];
    if (states.length === 0) return started;
    // Round-robin, one entry per partition per turn, so that one busy partition cannot take every slot.
    let progress = true;
    while (progress && this.#running < this.#limits.maxInFlight) {
      progress = false;
      for (let i = 0; i < states.length && this.#running < this.#limits.maxInFlight; i++) {
        const state = states[(this.#cursor + i) % states.length];
        if (!state || state.running >= this.#limits.maxInFlightPerPartition) continue;
        const head = state.runnable[0];
        if (!head) continue;
        if (this.#draining && (state.highestStarted === undefined || head.offset > state.highestStarted))
          continue;
        state.runnable.shift();
        head.state = 'running';
        state.running += 1;
        this.#running += 1;
        if (state.highestStarted === undefined || head.offset > state.highestStarted) {
          state.highestStarted = head.offset;
        }
        started.push(head);
        progress = true;
      }
    }
    this.#cursor = (this.#cursor + 1) % states.length;
    return started;
  }

  /**
   * A running entry waits (backoff, pause probe): its slot is free for others, its key stays blocked. When it runs
   * again it takes its slot back even if others filled it meanwhile: holding a retry back for a new event would
   * invert the order of work, so the bound may be overshot by the events coming back from a wait.
   */
  setWaiting(entry: Entry<M>, waiting: boolean): void {
    const state = this.#current(entry);
    if (!state) return;
    if (waiting && entry.state === 'running') {
      entry.state = 'waiting';
      state.running -= 1;
      this.#running -= 1;
    } else if (!waiting && entry.state === 'waiting') {
      entry.state = 'running';
      state.running += 1;
      this.#running += 1;
    }
  }

  /** The entry's outcome is final: its key's next entry may start, and the watermark may move past it. */
  complete(entry: Entry<M>): void {
    const state = this.#current(entry);
    if (!state || entry.state === 'final' || entry.state === 'queued') return;
    if (entry.state === 'running') {
      state.running -= 1;
      this.#running -= 1;
    }
    entry.state = 'final';
    state.unfinished -= 1;
    for (const key of entry.keys) {
      // It started only as the first in line for each key, and later offers only queue behind it.
      const queue = state.keys.get(key);
      queue?.shift();
      const next = queue?.[0];
      if (!next) {
        state.keys.delete(key);
      } else {
        next.blockers -= 1;
        if (next.blockers === 0) insertByOffset(state.runnable, next);
      }
    }
    let swept = 0;
    while (state.log[swept]?.state === 'final') swept += 1;
    if (swept > 0) state.log.splice(0, swept);
  }

  /**
   * A running entry stopped without a final outcome (shutdown): it frees its slot but stays unfinished, so the watermark
   * stays below it and it is redelivered; its key stays blocked.
   */
  abandon(entry: Entry<M>): void {
    const state = this.#current(entry);
    if (!state) return;
    if (entry.state === 'running') {
      state.running -= 1;
      this.#running -= 1;
    }
    entry.state = 'waiting';
  }

  /** The offset to commit for the partition, or undefined when nothing was accepted. */
  watermark(partition: string): bigint | undefined {
    const state = this.#partitions.get(partition);
    if (!state) return undefined;
    const first = state.log.find((e) => e.state !== 'final');
    return first ? first.offset : state.next;
  }

  /** No room for more: fetching of this partition should pause. */
  isFull(partition: string): boolean {
    const state = this.#partitions.get(partition);
    return state !== undefined && !this.#hasQueueRoom(state);
  }

  /** Enough room to fetch again (half the bound), so that fetching does not flap at the edge. */
  hasRoom(partition: string): boolean {
    const state = this.#partitions.get(partition);
    return state === undefined || state.unfinished <= this.#limits.maxQueuedPerPartition / 2;
  }

  /** While paused nothing new starts; entries already running go on (one of them is the probe). */
  set paused(paused: boolean) {
    this.#paused = paused;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Stopping: nothing new is accepted, and only events below the highest offset that started are still started. Those
   * fill the gaps under work already done, so that the final watermark covers every event that was sent.
   */
  drain(): void {
    this.#draining = true;
  }

  get running(): number {
    return this.#running;
  }

  /** Entries accepted and not final, over every partition. */
  get unfinished(): number {
    let n = 0;
    for (const state of this.#partitions.values()) n += state.unfinished;
    return n;
  }

  /** Whether a drain is done: nothing that may still start, nothing running. */
  get idle(): boolean {
    if (this.#running > 0) return false;
    if (this.#paused) return true;
    for (const state of this.#partitions.values()) {
      const head = state.runnable[0];
      if (!head) continue;
      if (!this.#draining) return false;
      if (state.highestStarted !== undefined && head.offset < state.highestStarted) return false;
    }
    return true;
  }

  /** The state of the entry's partition, unless the partition was revoked (or revoked and assigned anew) since. */
  #current(entry: Entry<M>): PartitionState<M> | undefined {
    // A reassigned partition has a new state, not the one the entry was accepted into. (A lookup, not a scan of the
    // log: this runs on every completion.)
    const state = this.#partitions.get(entry.partition);
    return state !== undefined && entry.state !== 'final' && this.#owner.get(entry) === state
      ? state
      : undefined;
  }
}

function insertByOffset<M>(list: Entry<M>[], entry: Entry<M>): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = list[mid];
    if (at && at.offset < entry.offset) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, entry);
}
