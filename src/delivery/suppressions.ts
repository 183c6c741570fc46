import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type pg from 'pg';
import { lazyPackage } from '../lazy.js';
import { BridgeError } from '../errors.js';
import { isPostgresUrl } from './ledger/open.js';
import { underSchemaLock } from './ledger/schema-lock.js';
import type { OutcomeListener } from './outcome-event.js';

const pgModule = lazyPackage<typeof pg>('pg');

/**
 * The suppression list: recipients (by recipient hash, never the address) whose email bounced or whose message
 * failed, not sent to again until `until`. Kept where the ledger is: next to the ledger file
 * (`<ledger>.suppressions.json`), or in a `geb_suppressions` table of the ledger's PostgreSQL schema.
 */
export interface Suppression {
  readonly recipientHash: string;
  /** Why: the outcome and Genesys' error code, free of personal data. */
  readonly reason: string;
  readonly rule?: string | undefined;
  readonly conversationId?: string | undefined;
  /** ISO-8601. */
  readonly createdAt: string;
  readonly until: string;
}

export interface SuppressionStore {
  readonly description: string;
  /** Adds or extends the suppression of a recipient. */
  add(suppression: Suppression): Promise<void>;
  /** The suppression in force for the recipient now, if any. */
  find(recipientHash: string, now?: Date): Promise<Suppression | undefined>;
  /** Every suppression in force, newest first. */
  list(now?: Date): Promise<Suppression[]>;
  /** Lifts it; returns whether there was one. */
  remove(recipientHash: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function openSuppressions(ledgerUrl: string): Promise<SuppressionStore> {
  if (isPostgresUrl(ledgerUrl)) return PostgresSuppressions.open(ledgerUrl);
  const path = ledgerUrl.startsWith('file://') ? new URL(ledgerUrl).pathname : ledgerUrl;
  return new FileSuppressions(`${resolve(path)}.suppressions.json`);
}

/**
 * Adds a suppression for every bounce (email) and downstream failure (message) with a recipient hash. Whether Genesys
 * tells a hard bounce from a soft one is not known (GENESYS.md): every bounce it reports counts.
 */
export function suppressOnBounce(
  store: SuppressionStore,
  days: number,
  onError: (error: unknown) => void,
): OutcomeListener {
  return (event) => {
    if (event.outcome !== 'bounced' && event.outcome !== 'failed-downstream') return;
    if (event.recipientHash === undefined || days <= 0) return;
    const now = Date.now();
    store
      .add({
        recipientHash: event.recipientHash,
        reason: `${event.outcome}${event.errorCode !== undefined ? ` (${event.errorCode})` : ''}`,
        rule: event.rule,
        conversationId: event.genesys?.conversationId,
        createdAt: new Date(now).toISOString(),
        until: new Date(now + days * 86_400_000).toISOString(),
      })
      .catch(onError);
  };
}

/**
 * A small JSON file, rewritten whole (temp file and rename) on each change and re-read when it changed on disk, so
 * that `geb suppressions remove` next to a running bridge takes effect. Two writers at the same instant may lose one
 * change; the list is small and changes rarely.
 */
export class FileSuppressions implements SuppressionStore {
  readonly description: string;
  readonly #path: string;
  #cache: Map<string, Suppression> | undefined;
  #mtimeMs = -1;

  constructor(path: string) {
    this.#path = path;
    this.description = `file ${path}`;
  }

  add(suppression: Suppression): Promise<void> {
    const all = this.#read();
    const known = all.get(suppression.recipientHash);
    if (!known || known.until < suppression.until) all.set(suppression.recipientHash, suppression);
    this.#write(all);
    return Promise.resolve();
  }

  find(recipientHash: string, now = new Date()): Promise<Suppression | undefined> {
    const found = this.#read().get(recipientHash);
    return Promise.resolve(found && Date.parse(found.until) > now.getTime() ? found : undefined);
  }

  list(now = new Date()): Promise<Suppression[]> {
    return Promise.resolve(
      [...this.#read().values()]
        .filter((s) => Date.parse(s.until) > now.getTime())
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
    );
  }

  remove(recipientHash: string): Promise<boolean> {
    const all = this.#read();
    const had = all.delete(recipientHash);
    if (had) this.#write(all);
    return Promise.resolve(had);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #read(): Map<string, Suppression> {
    if (!existsSync(this.#path)) return (this.#cache = new Map<string, Suppression>());
    const mtimeMs = statSync(this.#path).mtimeMs;
    if (this.#cache && mtimeMs === this.#mtimeMs) return this.#cache;
    try {
      const list = JSON.parse(readFileSync(this.#path, 'utf8')) as Suppression[];
      this.#cache = new Map(list.map((s) => [s.recipientHash, s]));
      this.#mtimeMs = mtimeMs;
      return this.#cache;
    } catch (error) {
      throw new BridgeError(
        'LEDGER_UNAVAILABLE',
        `the suppression list ${this.#path} cannot be read: ${(error as Error).message}`,
      );
    }
  }

  #write(all: Map<string, Suppression>): void {
    const now = Date.now();
    // Lapsed suppressions are dropped on every write: the file holds only what is in force.
    const live = [...all.values()].filter((s) => Date.parse(s.until) > now);
    mkdirSync(dirname(this.#path), { recursive: true });
    const temp = `${this.#path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(live, null, 1)}\n`);
    renameSync(temp, this.#path);
    this.#cache = new Map(live.map((s) => [s.recipientHash, s]));
    this.#mtimeMs = statSync(this.#path).mtimeMs;
  }
}

export class PostgresSuppressions implements SuppressionStore {
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #table: string;

  private constructor(pool: pg.Pool, table: string, description: string) {
    this.#pool = pool;
    this.#table = table;
    this.description = description;
  }

  static async open(url: string): Promise<PostgresSuppressions> {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? 'public';
    parsed.searchParams.delete('schema');
    const pool = new (pgModule().Pool)({ connectionString: parsed.toString(), max: 2 });
    pool.on('error', () => {});
    const quoted = `"${schema.replaceAll('"', '""')}"`;
    const store = new PostgresSuppressions(
      pool,
      `${quoted}.geb_suppressions`,
      `postgresql ${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname} schema ${schema}`,
    );
    try {
      await underSchemaLock(pool, 'genesys-event-bridge suppressions', async (client) => {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${quoted}.geb_suppressions (
             recipient_hash text PRIMARY KEY,
             reason text NOT NULL,
             rule text,
             conversation_id text,
             created_at timestamptz NOT NULL,
             until timestamptz NOT NULL
           )`,
        );
      });
    } catch (error) {
      await pool.end();
      throw unavailable(error);
    }
    return store;
  }

  async add(s: Suppression): Promise<void> {
    await this.#query(
      `INSERT INTO $TABLE (recipient_hash, reason, rule, conversation_id, created_at, until)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (recipient_hash) DO UPDATE SET reason = EXCLUDED.reason, rule = EXCLUDED.rule,
         conversation_id = EXCLUDED.conversation_id, created_at = EXCLUDED.created_at, until = EXCLUDED.until
       WHERE $TABLE.until < EXCLUDED.until`,
      [s.recipientHash, s.reason, s.rule ?? null, s.conversationId ?? null, s.createdAt, s.until],
    );
  }

  async find(recipientHash: string, now = new Date()): Promise<Suppression | undefined> {
    const rows = await this.#query(`SELECT * FROM $TABLE WHERE recipient_hash = $1 AND until > $2`, [
      recipientHash,
      now,
    ]);
    return rows[0];
  }

  list(now = new Date()): Promise<Suppression[]> {
    return this.#query(`SELECT * FROM $TABLE WHERE until > $1 ORDER BY created_at DESC`, [now]);
  }

  async remove(recipientHash: string): Promise<boolean> {
    const rows = await this.#query(`DELETE FROM $TABLE WHERE recipient_hash = $1 RETURNING *`, [
      recipientHash,
    ]);
    return rows.length > 0;
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #query(sql: string, params: unknown[]): Promise<Suppression[]> {
    try {
      const result = await this.#pool.query<Row>(sql.replaceAll('$TABLE', this.#table), params);
      return result.rows.map((row) => ({
        recipientHash: row.recipient_hash,
        reason: row.reason,
        rule: row.rule ?? undefined,
        conversationId: row.conversation_id ?? undefined,
        createdAt: row.created_at.toISOString(),
        until: row.until.toISOString(),
      }));
    } catch (error) {
      throw unavailable(error);
    }
  }
}

interface Row {
  recipient_hash: string;
  reason: string;
  rule: string | null;
  conversation_id: string | null;
  created_at: Date;
  until: Date;
}

function unavailable(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  return new BridgeError(
    'LEDGER_UNAVAILABLE',
    `the PostgreSQL suppression list failed: ${error instanceof Error ? error.message : String(error)}`,
  );
}
