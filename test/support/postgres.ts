import pg from 'pg';
import { randomUUID } from 'node:crypto';

/**
 * The PostgreSQL the ledger tests use: POSTGRES_URL, or the local one (trust auth, database `test`). Each test gets
 * a schema of its own (`?schema=`), so parallel runs never see each other's records.
 */
export function postgresUrl(schema?: string): string {
  const base = process.env['POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  if (schema === undefined) return base;
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return url.toString();
}

export function uniqueSchema(prefix = 'geb_test'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
