import type pg from 'pg';
import { lazyPackage } from '../../lazy.js';
import { underSchemaLock } from './schema-lock.js';

const pgModule = lazyPackage<typeof pg>('pg');
import { BridgeError } from '../../errors.js';
import {
  DEFAULT_QUERY_LIMIT,
  OUTCOME_FROM,
  type BeginInput,
  type BeginResult,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryRef,
  type DeliveryState,
  type DownstreamState,
  type EventOrigin,
  type FailureInfo,
  type Ledger,
  type OutcomeInfo,
  type SkippedState,
  type SentInfo,
} from './ledger.js';

/**
 * The shared ledger: one PostgreSQL table for every replica of a consumer group. Claims are single-statement upserts
 * (`INSERT ... ON CONFLICT DO NOTHING`) and take-overs are compare-and-set updates, so two replicas that see the same
 * event (a rebalance) cannot both call Genesys for it. The schema is created and migrated at start, under an advisory
 * lock so that replicas starting together do not race. The `schema` query parameter of the URL picks the PostgreSQL
 * schema (default `public`); it is created if missing.
 */
export class PostgresLedger implements Ledger {
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #table: string;
  readonly #claims: PendingClaim[] = [];
  #claimStatements = 0;
  #claimsSent: Promise<void> | undefined;

  private constructor(pool: pg.Pool, schema: string, description: string) {
    this.#pool = pool;
    this.#table = `${quoteIdent(schema)}.geb_deliveries`;
    this.description = description;
  }

  static async open(url: string): Promise<PostgresLedger> {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? 'public';
    parsed.searchParams.delete('schema');
    const pool = new (pgModule().Pool)({ connectionString: parsed.toString(), max: 4 });
    // An idle client losing its connection must not crash the process; the next query reports it.
    pool.on('error', () => {});
    const ledger = new PostgresLedger(
      pool,
      schema,
      `postgresql ${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname} schema ${schema}`,
    );
    try {
      await ledger.#migrate(schema);
    } catch (error) {
      await pool.end();
      throw unavailable(error);
    }
    return ledger;
  }

  async #migrate(schema: string): Promise<void> {
    await underSchemaLock(this.#pool, 'genesys-event-bridge ledger', async (client) => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.geb_ledger_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ version: number }>(
        `SELECT coalesce(max(version), 0) AS version FROM ${quoteIdent(schema)}.geb_ledger_migrations`,
      );
      const current = rows[0]?.version ?? 0;
      for (const [index, statements] of MIGRATIONS.entries()) {
        const version = index + 1;
        if (version <= current) continue;
        for (const sql of statements) await client.query(sql.replaceAll('$TABLE', this.#table));
        await client.query(`INSERT INTO ${quoteIdent(schema)}.geb_ledger_migrations (version) VALUES ($1)`, [
          version,
        ]);
      }
    });
  }

  /**
   * Group commit: the claims of one turn of the event loop go to PostgreSQL together at its end (setImmediate), as
   * one multi-row `INSERT ... ON CONFLICT DO NOTHING` (one round trip, one commit and WAL flush instead of one per
   * delivery). Each caller resolves once the statement holding its claim has committed. Per row, the result is what
   * the claims made one after the other would give: of two claims of one delivery in the same turn the first wins
   * and the second sees its pending record.
   */
  begin(input: BeginInput): Promise<BeginResult> {
    return new Promise((resolve, reject) => {
      this.#claims.push({ input, resolve, reject });
      if (this.#claims.length === 1) {
        this.#claimsSent = new Promise<void>((turnEnds) => setImmediate(turnEnds)).then(() =>
          this.#claimBatch(),
        );
      }
    });
  }

  /** How many claim statements this ledger has sent (one per group of claims): for tests and the bench. */
  get claimStatements(): number {
    return this.#claimStatements;
  }

  async #claimBatch(): Promise<void> {
    const batch = this.#claims.splice(0);
    const leaders = new Map<string, PendingClaim>();
    const followers: { claim: PendingClaim; leader: PendingClaim }[] = [];
    for (const claim of batch) {
      const key = claimId(claim.input);
      const leader = leaders.get(key);
      if (leader) followers.push({ claim, leader });
      else leaders.set(key, claim);
    }
    // The same order in every replica, so two batches that share keys take their row locks in the same order (no
    // deadlock between them).
    const unique = [...leaders.values()].sort((a, b) => compareRefs(a.input, b.input));
    const results = new Map<PendingClaim, Promise<BeginResult>>();
    try {
      for (let start = 0; start < unique.length; start += MAX_CLAIMS_PER_STATEMENT) {
        const chunk = unique.slice(start, start + MAX_CLAIMS_PER_STATEMENT);
        for (const [claim, result] of await this.#claimChunk(chunk)) results.set(claim, result);
      }
    } catch (error) {
      for (const claim of batch) claim.reject(unavailable(error));
      return;
    }
    for (const claim of unique) {
      (results.get(claim) as Promise<BeginResult>).then(claim.resolve, claim.reject);
    }
    for (const { claim, leader } of followers) {
      (results.get(leader) as Promise<BeginResult>).then(
        (first) => claim.resolve({ claimed: false, record: first.record }),
        claim.reject,
      );
    }
  }

  async #claimChunk(chunk: PendingClaim[]): Promise<Map<PendingClaim, Promise<BeginResult>>> {
    const params: unknown[] = [];
    const values = chunk.map(({ input }) => {
      const at = params.length;
      params.push(
        input.rule,
        input.idempotencyKey,
        input.topic,
        input.partition,
        input.offset,
        input.key,
        input.traceId ?? null,
        input.recipientHash ?? null,
        input.owner,
      );
      const p = (n: number) => `$${at + n}`;
      return `(${p(1)}, ${p(2)}, 'pending', ${p(3)}, ${p(4)}::integer, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)})`;
    });
    this.#claimStatements++;
    const inserted = await this.#rows(
      `INSERT INTO $TABLE (rule, idempotency_key, state, topic, partition, "offset", message_key, trace_id,
         recipient_hash, owner)
       VALUES ${values.join(', ')}
       ON CONFLICT (rule, idempotency_key) DO NOTHING
       RETURNING *`,
      params,
    );
    const claimed = new Map(inserted.map((record) => [claimId(record), record]));
    const taken = chunk.filter((c) => !claimed.has(claimId(c.input)));
    const existing = new Map<string, DeliveryRecord>();
    if (taken.length > 0) {
      const rows = await this.#rows(
        `SELECT t.* FROM $TABLE t JOIN unnest($1::text[], $2::text[]) AS k(rule, idempotency_key)
           ON t.rule = k.rule AND t.idempotency_key = k.idempotency_key`,
        [taken.map((c) => c.input.rule), taken.map((c) => c.input.idempotencyKey)],
      );
      for (const record of rows) existing.set(claimId(record), record);
    }
    return new Map(
      chunk.map((claim): [PendingClaim, Promise<BeginResult>] => {
        const key = claimId(claim.input);
        const mine = claimed.get(key);
        if (mine) return [claim, Promise.resolve({ claimed: true, record: mine })];
        const theirs = existing.get(key);
        if (theirs) return [claim, Promise.resolve({ claimed: false, record: theirs })];
        // Deleted between the two statements (expiry or a release): claim again, in the next group.
        return [claim, this.begin(claim.input)];
      }),
    );
  }

  takeOver(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined> {
    return this.#reclaim(input, fromOwner, `state = 'pending'`);
  }

  reopen(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined> {
    return this.#reclaim(input, fromOwner, `state IN ('dead-lettered', 'failed')`);
  }

  /** Compare-and-set: back to pending for `input.owner`, only from `fromOwner` and a state `from` allows. */
  async #reclaim(
    input: BeginInput,
    fromOwner: string | undefined,
    from: string,
  ): Promise<DeliveryRecord | undefined> {
    const [row] = await this.#rows(
      `UPDATE $TABLE SET state = 'pending', owner = $3, trace_id = coalesce($5, trace_id),
         recipient_hash = coalesce($6, recipient_hash), updated_at = now()
       WHERE rule = $1 AND idempotency_key = $2 AND ${from} AND owner IS NOT DISTINCT FROM $4
       RETURNING *`,
      [
        input.rule,
        input.idempotencyKey,
        input.owner,
        fromOwner ?? null,
        input.traceId ?? null,
        input.recipientHash ?? null,
      ],
    );
    return row;
  }

  async markInDoubt(
    ref: DeliveryRef,
    fromOwner: string | undefined,
    reason: string,
  ): Promise<DeliveryRecord | undefined> {
    const [row] = await this.#rows(
      `UPDATE $TABLE SET state = 'in-doubt', reason = $3, updated_at = now()
       WHERE rule = $1 AND idempotency_key = $2 AND state = 'pending' AND owner IS NOT DISTINCT FROM $4
       RETURNING *`,
      [ref.rule, ref.idempotencyKey, reason, fromOwner ?? null],
    );
    return row;
  }

  async markSent(ref: DeliveryRef, info: SentInfo): Promise<void> {
    const rows = await this.#rows(
      `UPDATE $TABLE SET state = 'sent', genesys_id = $3, correlation_id = $4, attempts = $5, error_code = NULL,
         reason = NULL, updated_at = now()
       WHERE rule = $1 AND idempotency_key = $2
       RETURNING *`,
      [ref.rule, ref.idempotencyKey, info.genesysId ?? null, info.correlationId ?? null, info.attempts],
    );
    if (rows.length === 0) throw new Error(`ledger: no record for ${ref.rule} ${ref.idempotencyKey}`);
  }

  markFailed(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.#final(ref, 'failed', info);
  }

  markDeadLettered(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.#final(ref, 'dead-lettered', info);
  }

  async #final(ref: DeliveryRef & EventOrigin, state: DeliveryState, info: FailureInfo): Promise<void> {
    await this.#rows(
      `INSERT INTO $TABLE (rule, idempotency_key, state, topic, partition, "offset", message_key, trace_id,
         error_code, reason, correlation_id, attempts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, 0))
       ON CONFLICT (rule, idempotency_key) DO UPDATE SET
         state = EXCLUDED.state, error_code = EXCLUDED.error_code, reason = EXCLUDED.reason,
         correlation_id = coalesce(EXCLUDED.correlation_id, $TABLE.correlation_id),
         attempts = coalesce($12, $TABLE.attempts), updated_at = now()`,
      [
        ref.rule,
        ref.idempotencyKey,
        state,
        ref.topic,
        ref.partition,
        ref.offset,
        ref.key,
        ref.traceId ?? null,
        info.errorCode,
        info.reason,
        info.correlationId ?? null,
        info.attempts ?? null,
      ],
    );
  }

  async markOutcome(
    ref: DeliveryRef & EventOrigin,
    state: DownstreamState | SkippedState,
    info: OutcomeInfo,
  ): Promise<boolean> {
    const from = OUTCOME_FROM[state];
    const params = [
      ref.rule,
      ref.idempotencyKey,
      state,
      info.errorCode ?? null,
      info.reason ?? null,
      from.filter((s) => s !== 'none'),
    ];
    // One statement each way, so that a concurrent change cannot slip in between the check and the write.
    const updated = await this.#rows(
      `UPDATE $TABLE SET state = $3, error_code = $4, reason = $5, updated_at = now()
       WHERE rule = $1 AND idempotency_key = $2 AND state = ANY($6::text[])
       RETURNING *`,
      params,
    );
    if (updated.length > 0) return true;
    if (!from.includes('none')) return false;
    const inserted = await this.#rows(
      `INSERT INTO $TABLE (rule, idempotency_key, state, topic, partition, "offset", message_key, trace_id,
         error_code, reason, recipient_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (rule, idempotency_key) DO NOTHING
       RETURNING *`,
      [
        ref.rule,
        ref.idempotencyKey,
        state,
        ref.topic,
        ref.partition,
        ref.offset,
        ref.key,
        ref.traceId ?? null,
        info.errorCode ?? null,
        info.reason ?? null,
        info.recipientHash ?? null,
      ],
    );
    return inserted.length > 0;
  }

  async reclaimInDoubt(input: BeginInput): Promise<DeliveryRecord | undefined> {
    const [row] = await this.#rows(
      `UPDATE $TABLE SET state = 'pending', owner = $3, trace_id = coalesce($4, trace_id), reason = NULL,
         updated_at = now()
       WHERE rule = $1 AND idempotency_key = $2 AND state = 'in-doubt'
       RETURNING *`,
      [input.rule, input.idempotencyKey, input.owner, input.traceId ?? null],
    );
    return row;
  }

  async markSkipped(ref: DeliveryRef): Promise<void> {
    await this.#rows(
      `UPDATE $TABLE SET skipped = skipped + 1, updated_at = now() WHERE rule = $1 AND idempotency_key = $2`,
      [ref.rule, ref.idempotencyKey],
    );
  }

  async release(ref: DeliveryRef, owner: string): Promise<void> {
    await this.#rows(
      `DELETE FROM $TABLE WHERE rule = $1 AND idempotency_key = $2 AND state = 'pending' AND owner = $3`,
      [ref.rule, ref.idempotencyKey, owner],
    );
  }

  async lookup(ref: DeliveryRef): Promise<DeliveryRecord | undefined> {
    const [row] = await this.#rows(`SELECT * FROM $TABLE WHERE rule = $1 AND idempotency_key = $2`, [
      ref.rule,
      ref.idempotencyKey,
    ]);
    return row;
  }

  async query(q: DeliveryQuery): Promise<DeliveryRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(clause.replaceAll('?', `$${params.length}`));
    };
    if (q.topic !== undefined) add('topic = ?', q.topic);
    if (q.partition !== undefined) add('partition = ?', q.partition);
    if (q.offset !== undefined) add('"offset" = ?', q.offset);
    if (q.key !== undefined) add('(message_key = ? OR idempotency_key = ?)', q.key);
    if (q.rule !== undefined) add('rule = ?', q.rule);
    if (q.state !== undefined) add('state = ?', q.state);
    if (q.recipientHash !== undefined) add('recipient_hash = ?', q.recipientHash);
    if (q.since !== undefined) add('updated_at >= ?', q.since);
    params.push(q.limit ?? DEFAULT_QUERY_LIMIT);
    return this.#rows(
      `SELECT * FROM $TABLE ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY updated_at DESC, idempotency_key LIMIT $${params.length}`,
      params,
    );
  }

  async expire(olderThan: Date): Promise<number> {
    const result = await this.#query(`DELETE FROM $TABLE WHERE updated_at < $1`, [olderThan]);
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    // Claims made before the close still go out (the pool refuses queries once it ends).
    await this.#claimsSent;
    await this.#pool.end();
  }

  async #rows(sql: string, params: unknown[]): Promise<DeliveryRecord[]> {
    const result = await this.#query(sql, params);
    return result.rows.map(toRecord);
  }

  async #query(sql: string, params: unknown[]): Promise<pg.QueryResult<Row>> {
    try {
      return await this.#pool.query<Row>(sql.replaceAll('$TABLE', this.#table), params);
    } catch (error) {
      throw unavailable(error);
    }
  }
}

interface PendingClaim {
  readonly input: BeginInput;
  readonly resolve: (result: BeginResult) => void;
  readonly reject: (error: unknown) => void;
}

/** 9 parameters a row: well under PostgreSQL's 65,535 parameters a statement. */
const MAX_CLAIMS_PER_STATEMENT = 1_000;

function claimId(ref: DeliveryRef): string {
  return JSON.stringify([ref.rule, ref.idempotencyKey]);
}

function compareRefs(a: DeliveryRef, b: DeliveryRef): number {
  return a.rule < b.rule
    ? -1
    : a.rule > b.rule
      ? 1
      : a.idempotencyKey < b.idempotencyKey
        ? -1
        : a.idempotencyKey > b.idempotencyKey
          ? 1
          : 0;
}

/** Append-only: a released version is never edited, a change is a new entry. */
const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE $TABLE (
       rule text NOT NULL,
       idempotency_key text NOT NULL,
       state text NOT NULL,
       topic text NOT NULL,
       partition integer NOT NULL,
       "offset" text NOT NULL,
       message_key text,
       trace_id text,
       recipient_hash text,
       attempts integer NOT NULL DEFAULT 0,
       genesys_id text,
       correlation_id text,
       error_code text,
       reason text,
       skipped integer NOT NULL DEFAULT 0,
       owner text,
       created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (rule, idempotency_key)
     )`,
    `CREATE INDEX ON $TABLE (topic, partition, "offset")`,
    `CREATE INDEX ON $TABLE (message_key)`,
    `CREATE INDEX ON $TABLE (updated_at)`,
  ],
  // `geb deliveries show --recipient`
  [`CREATE INDEX ON $TABLE (recipient_hash)`],
];

interface Row {
  rule: string;
  idempotency_key: string;
  state: DeliveryState;
  topic: string;
  partition: number;
  offset: string;
  message_key: string | null;
  trace_id: string | null;
  recipient_hash: string | null;
  attempts: number;
  genesys_id: string | null;
  correlation_id: string | null;
  error_code: string | null;
  reason: string | null;
  skipped: number;
  owner: string | null;
  created_at: Date;
  updated_at: Date;
}

function toRecord(row: Row): DeliveryRecord {
  return {
    rule: row.rule,
    idempotencyKey: row.idempotency_key,
    state: row.state,
    topic: row.topic,
    partition: row.partition,
    offset: row.offset,
    key: row.message_key,
    traceId: row.trace_id ?? undefined,
    recipientHash: row.recipient_hash ?? undefined,
    attempts: row.attempts,
    genesysId: row.genesys_id ?? undefined,
    correlationId: row.correlation_id ?? undefined,
    errorCode: row.error_code ?? undefined,
    reason: row.reason ?? undefined,
    skipped: row.skipped,
    owner: row.owner ?? undefined,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** pg's messages name tables and values, never credentials; the URL itself is never put in a message. */
function unavailable(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BridgeError('LEDGER_UNAVAILABLE', `the PostgreSQL ledger failed: ${message}`, {
    ...(error instanceof Error && { cause: error }),
  });
}
