import {
  closeSync,
  existsSync,
  fdatasync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  write,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import { dirname, resolve } from 'node:path';
import { BridgeError } from '../../errors.js';
import {
  DEFAULT_QUERY_LIMIT,
  OUTCOME_FROM,
  matchesQuery,
  type BeginInput,
  type BeginResult,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryRef,
  type EventOrigin,
  type DownstreamState,
  type FailureInfo,
  type Ledger,
  type OutcomeInfo,
  type SkippedState,
  type SentInfo,
} from './ledger.js';

/**
 * The embedded ledger: an append-only JSON-lines file, one full record per line (the last line of a key wins), each
 * write fsynced before the call it guards is made. Opening it folds the log into memory, drops a torn last line (a
 * crash mid-write), drops expired records and rewrites the file compacted (temp file, fsync, rename). A lock file
 * (`<file>.lock`, holding the pid) keeps a second process from writing to it; a lock left by a dead process is taken
 * over.
 *
 * For one bridge process; replicas of a consumer group share a PostgreSQL ledger instead.
 */
export class FileLedger implements Ledger {
  readonly description: string;
  readonly #path: string;
  readonly #records = new Map<string, DeliveryRecord>();
  readonly #readOnly: boolean;
  #fd: number | undefined;
  #lines = 0;
  readonly #queue: { line: string; resolve: () => void; reject: (error: Error) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #failure: BridgeError | undefined;
  #syncs = 0;

  private constructor(path: string, readOnly: boolean) {
    this.#path = resolve(path);
    this.#readOnly = readOnly;
    this.description = `file ${this.#path}`;
  }

  /**
   * `readOnly` (for `geb deliveries`, which may run next to the bridge) reads the file as it is, takes no lock and
   * refuses writes.
   */
  static open(path: string, options: { readOnly?: boolean; retentionMs?: number } = {}): FileLedger {
    const ledger = new FileLedger(path, options.readOnly ?? false);
    if (ledger.#readOnly) {
      ledger.#load();
      return ledger;
    }
    mkdirSync(dirname(ledger.#path), { recursive: true });
    ledger.#lock();
    try {
      ledger.#load();
      if (options.retentionMs !== undefined)
        ledger.#dropOlderThan(new Date(Date.now() - options.retentionMs));
      ledger.#compact();
    } catch (error) {
      ledger.#unlock();
      throw error;
    }
    return ledger;
  }

  begin(input: BeginInput): Promise<BeginResult> {
    const existing = this.#records.get(id(input));
    if (existing) return Promise.resolve({ claimed: false, record: existing });
    const now = new Date().toISOString();
    const record: DeliveryRecord = {
      ...origin(input),
      rule: input.rule,
      idempotencyKey: input.idempotencyKey,
      state: 'pending',
      recipientHash: input.recipientHash,
      attempts: 0,
      skipped: 0,
      owner: input.owner,
      createdAt: now,
      updatedAt: now,
    };
    return this.#put(record).then(() => ({ claimed: true, record }));
  }

  takeOver(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined> {
    const existing = this.#records.get(id(input));
    if (!existing || existing.state !== 'pending' || existing.owner !== fromOwner) {
      return Promise.resolve(undefined);
    }
    return this.#put({
      ...existing,
      owner: input.owner,
      traceId: input.traceId ?? existing.traceId,
      recipientHash: input.recipientHash ?? existing.recipientHash,
      updatedAt: new Date().toISOString(),
    });
  }

  reopen(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined> {
    const existing = this.#records.get(id(input));
    if (
      !existing ||
      (existing.state !== 'dead-lettered' && existing.state !== 'failed') ||
      existing.owner !== fromOwner
    ) {
      return Promise.resolve(undefined);
    }
    return this.#put({
      ...existing,
      state: 'pending',
      owner: input.owner,
      traceId: input.traceId ?? existing.traceId,
      recipientHash: input.recipientHash ?? existing.recipientHash,
      updatedAt: new Date().toISOString(),
    });
  }

  markInDoubt(
    ref: DeliveryRef,
    fromOwner: string | undefined,
    reason: string,
  ): Promise<DeliveryRecord | undefined> {
    const existing = this.#records.get(id(ref));
    if (!existing || existing.state !== 'pending' || existing.owner !== fromOwner) {
      return Promise.resolve(undefined);
    }
    return this.#put({ ...existing, state: 'in-doubt', reason, updatedAt: new Date().toISOString() });
  }

  markSent(ref: DeliveryRef, info: SentInfo): Promise<void> {
    const existing = this.#require(ref);
    return this.#done(
      this.#put({
        ...existing,
        state: 'sent',
        genesysId: info.genesysId,
        correlationId: info.correlationId,
        attempts: info.attempts,
        errorCode: undefined,
        reason: undefined,
        updatedAt: new Date().toISOString(),
      }),
    );
  }

  markFailed(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.#final(ref, 'failed', info);
  }

  markDeadLettered(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.#final(ref, 'dead-lettered', info);
  }

  markOutcome(
    ref: DeliveryRef & EventOrigin,
    state: DownstreamState | SkippedState,
    info: OutcomeInfo,
  ): Promise<boolean> {
    const existing = this.#records.get(id(ref));
    if (!OUTCOME_FROM[state].includes(existing?.state ?? 'none')) return Promise.resolve(false);
    const now = new Date().toISOString();
    return this.#put({
      ...(existing ?? {
        ...origin(ref),
        rule: ref.rule,
        idempotencyKey: ref.idempotencyKey,
        attempts: 0,
        skipped: 0,
        createdAt: now,
      }),
      state,
      errorCode: info.errorCode,
      reason: info.reason,
      recipientHash: existing?.recipientHash ?? info.recipientHash,
      updatedAt: now,
    }).then(() => true);
  }

  reclaimInDoubt(input: BeginInput): Promise<DeliveryRecord | undefined> {
    const existing = this.#records.get(id(input));
    if (existing?.state !== 'in-doubt') return Promise.resolve(undefined);
    return this.#put({
      ...existing,
      state: 'pending',
      owner: input.owner,
      traceId: input.traceId ?? existing.traceId,
      reason: undefined,
      updatedAt: new Date().toISOString(),
    });
  }

  markSkipped(ref: DeliveryRef): Promise<void> {
    const existing = this.#records.get(id(ref));
    if (!existing) return Promise.resolve();
    return this.#done(
      this.#put({ ...existing, skipped: existing.skipped + 1, updatedAt: new Date().toISOString() }),
    );
  }

  release(ref: DeliveryRef, owner: string): Promise<void> {
    const existing = this.#records.get(id(ref));
    if (existing?.state === 'pending' && existing.owner === owner) return this.#delete(ref);
    return Promise.resolve();
  }

  lookup(ref: DeliveryRef): Promise<DeliveryRecord | undefined> {
    return Promise.resolve(this.#records.get(id(ref)));
  }

  query(query: DeliveryQuery): Promise<DeliveryRecord[]> {
    const found = [...this.#records.values()].filter((r) => matchesQuery(r, query));
    found.sort(
      (a, b) => b.updatedAt.localeCompare(a.updatedAt) || a.idempotencyKey.localeCompare(b.idempotencyKey),
    );
    return Promise.resolve(found.slice(0, query.limit ?? DEFAULT_QUERY_LIMIT));
  }

  async expire(olderThan: Date): Promise<number> {
    this.#assertWritable();
    await this.#flushing;
    const dropped = this.#dropOlderThan(olderThan);
    if (dropped > 0) this.#compact();
    return dropped;
  }

  async close(): Promise<void> {
    await this.#flushing;
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = undefined;
      this.#unlock();
    }
  }

  /** How many fdatasyncs of appended lines this ledger has made (one per group commit): for tests and the bench. */
  get syncs(): number {
    return this.#syncs;
  }

  #done(written: Promise<unknown>): Promise<void> {
    return written.then(() => undefined);
  }

  #final(
    ref: DeliveryRef & EventOrigin,
    state: 'failed' | 'dead-lettered',
    info: FailureInfo,
  ): Promise<void> {
    const existing = this.#records.get(id(ref));
    const now = new Date().toISOString();
    return this.#done(
      this.#put({
        ...(existing ?? {
          ...origin(ref),
          rule: ref.rule,
          idempotencyKey: ref.idempotencyKey,
          attempts: 0,
          skipped: 0,
          createdAt: now,
        }),
        state,
        errorCode: info.errorCode,
        reason: info.reason,
        correlationId: info.correlationId ?? existing?.correlationId,
        attempts: info.attempts ?? existing?.attempts ?? 0,
        updatedAt: now,
      }),
    );
  }

  #require(ref: DeliveryRef): DeliveryRecord {
    const existing = this.#records.get(id(ref));
    if (!existing) throw new Error(`ledger: no record for ${ref.rule} ${ref.idempotencyKey}`);
    return existing;
  }

  /**
   * The map changes at once (later calls see it); the promise resolves once the line is on disk, and only then may
   * the caller act on it (call Genesys after a claim).
   */
  #put(record: DeliveryRecord): Promise<DeliveryRecord> {
    const written = this.#append(JSON.stringify(record));
    this.#records.set(id(record), record);
    return written.then(() => record);
  }

  #delete(ref: DeliveryRef): Promise<void> {
    const written = this.#append(
      JSON.stringify({ deleted: { rule: ref.rule, idempotencyKey: ref.idempotencyKey } }),
    );
    this.#records.delete(id(ref));
    return written;
  }

  /**
   * Group commit: every line appended in one turn of the event loop goes out in one write and one fdatasync at the
   * end of that turn (setImmediate), and lines appended while that write is on its way go out together in the next
   * one; so the claims of all partitions fetched together share the disk's latency instead of queueing behind it.
   * Each caller's promise resolves only once the write holding its line is synced. Off the event loop.
   */
  #append(line: string): Promise<void> {
    this.#assertWritable();
    return new Promise((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      this.#flushing ??= afterThisTurn().then(() => this.#flush());
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failure === undefined) {
        const batch = this.#queue.splice(0);
        try {
          const fd = this.#fd as number;
          await writeFully(fd, Buffer.from(batch.map((b) => `${b.line}\n`).join(''), 'utf8'));
          await fdatasyncAsync(fd);
          this.#syncs++;
        } catch (error) {
          // The map is ahead of the file now: refuse everything until a restart reloads the file.
          this.#failure = new BridgeError(
            'LEDGER_UNAVAILABLE',
            `the ledger file ${this.#path} could not be written: ${(error as Error).message}`,
          );
          for (const b of [...batch, ...this.#queue.splice(0)]) b.reject(this.#failure);
          return;
        }
        this.#lines += batch.length;
        for (const b of batch) b.resolve();
        if (this.#queue.length === 0) this.#maybeCompact();
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /** Superseded lines pile up (two or three per delivery): rewrite once they outnumber the live records well. */
  #maybeCompact() {
    if (this.#lines > Math.max(COMPACT_AFTER_LINES, this.#records.size * 4)) this.#compact();
  }

  #assertWritable() {
    if (this.#failure) throw this.#failure;
    if (this.#readOnly) throw new Error('ledger: opened read-only');
    if (this.#fd === undefined) throw new Error('ledger: closed');
  }

  #load() {
    if (!existsSync(this.#path)) return;
    const lines = readFileSync(this.#path, 'utf8').split('\n');
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      let entry: DeliveryRecord | { deleted: DeliveryRef };
      try {
        entry = JSON.parse(line) as DeliveryRecord | { deleted: DeliveryRef };
      } catch (error) {
        // Only the last line can be torn by a crash; anything else is damage that must not be silently dropped.
        if (index >= lines.length - 2) return;
        throw new BridgeError(
          'LEDGER_UNAVAILABLE',
          `the ledger file ${this.#path} is damaged at line ${index + 1}: ${(error as Error).message}`,
        );
      }
      if ('deleted' in entry) this.#records.delete(id(entry.deleted));
      else this.#records.set(id(entry), entry);
    });
  }

  #dropOlderThan(olderThan: Date): number {
    let dropped = 0;
    for (const [key, record] of this.#records) {
      if (Date.parse(record.updatedAt) < olderThan.getTime()) {
        this.#records.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Rewrites the file with one line per live record and reopens it for appending. */
  #compact() {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    const temp = `${this.#path}.compacting`;
    const text = [...this.#records.values()].map((r) => `${JSON.stringify(r)}\n`).join('');
    const tempFd = openSync(temp, 'w');
    try {
      writeSync(tempFd, text);
      fsyncSync(tempFd);
    } finally {
      closeSync(tempFd);
    }
    renameSync(temp, this.#path);
    syncDirectory(dirname(this.#path));
    this.#fd = openSync(this.#path, 'a');
    this.#lines = this.#records.size;
  }

  get #lockPath() {
    return `${this.#path}.lock`;
  }

  #lock() {
    if (OPEN_IN_THIS_PROCESS.has(this.#path)) {
      throw new BridgeError('LEDGER_UNAVAILABLE', `the ledger file ${this.#path} is already open`);
    }
    try {
      writeFileSync(this.#lockPath, String(process.pid), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(this.#lockPath, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new BridgeError(
          'LEDGER_UNAVAILABLE',
          `the ledger file ${this.#path} is in use by process ${holder}; one file serves one bridge process (replicas share a PostgreSQL ledger)`,
        );
      }
      // Left behind by a process that died (or by this pid in an earlier life): take it over.
      writeFileSync(this.#lockPath, String(process.pid));
    }
    OPEN_IN_THIS_PROCESS.add(this.#path);
  }

  #unlock() {
    OPEN_IN_THIS_PROCESS.delete(this.#path);
    try {
      unlinkSync(this.#lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

const OPEN_IN_THIS_PROCESS = new Set<string>();
const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const COMPACT_AFTER_LINES = 50_000;

function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function writeFully(fd: number, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length;) {
    const { bytesWritten } = await writeAsync(fd, data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

function id(ref: DeliveryRef): string {
  return JSON.stringify([ref.rule, ref.idempotencyKey]);
}

function origin(o: EventOrigin): EventOrigin {
  return { topic: o.topic, partition: o.partition, offset: o.offset, key: o.key, traceId: o.traceId };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function syncDirectory(dir: string) {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
