import type pg from 'pg';

/**
 * Runs `work` in one transaction under a transaction-level advisory lock named `lock`: replicas starting together
 * create and migrate tables one at a time. PostgreSQL does not make `CREATE … IF NOT EXISTS` atomic: without the lock
 * the loser of a race fails on a duplicate key in pg_type and cannot start.
 */
export async function underSchemaLock(
  pool: pg.Pool,
  lock: string,
  work: (client: pg.PoolClient) => Promise<void>,
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lock]);
    await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
