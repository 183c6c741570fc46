import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSuppressions, type SuppressionStore } from '../../src/delivery/suppressions.js';
import { recipientHasher } from '../../src/telemetry/logger.js';

/** The bridges in this test run without RECIPIENT_HASH_KEY: the unkeyed hash. */
const personalDataHash = recipientHasher(undefined);
import { dropSchema, postgresUrl, uniqueSchema } from '../support/postgres.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function geb(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '' },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const DAY = 86_400_000;
const suppression = (to: string, untilMs: number) => ({
  recipientHash: personalDataHash(to),
  reason: 'bounced (email.delivery.failed)',
  rule: 'welcome',
  conversationId: 'conv-1',
  createdAt: new Date().toISOString(),
  until: new Date(untilMs).toISOString(),
});

async function storeContract(store: SuppressionStore): Promise<void> {
  await store.add(suppression('ada@example.com', Date.now() + DAY));
  await store.add(suppression('old@example.com', Date.now() - 1_000));
  expect(await store.find(personalDataHash('ada@example.com'))).toMatchObject({ rule: 'welcome' });
  // A lapsed one is not in force.
  expect(await store.find(personalDataHash('old@example.com'))).toBeUndefined();
  // A shorter suppression does not cut a longer one short.
  await store.add(suppression('ada@example.com', Date.now() + 1_000));
  expect(Date.parse((await store.find(personalDataHash('ada@example.com')))?.until ?? '')).toBeGreaterThan(
    Date.now() + DAY / 2,
  );
  expect((await store.list()).map((s) => s.recipientHash)).toEqual([personalDataHash('ada@example.com')]);
  expect(await store.remove(personalDataHash('ada@example.com'))).toBe(true);
  expect(await store.remove(personalDataHash('ada@example.com'))).toBe(false);
  expect(await store.find(personalDataHash('ada@example.com'))).toBeUndefined();
}

describe('suppression list', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'geb-suppressions-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('file store: adds, finds what is in force, lists and removes', async () => {
    const store = await openSuppressions(join(dir, 'ledger.jsonl'));
    await storeContract(store);
    await store.close();
  });

  it('PostgreSQL store: the same', async () => {
    const schema = uniqueSchema();
    const store = await openSuppressions(postgresUrl(schema));
    try {
      await storeContract(store);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });

  it('PostgreSQL store: replicas starting together on a new schema all open it (its table is created once)', async () => {
    const schema = uniqueSchema();
    // Before the advisory lock, concurrent CREATE TABLE IF NOT EXISTS failed one of them on a duplicate pg_type key.
    const opened = await Promise.allSettled(
      Array.from({ length: 4 }, () => openSuppressions(postgresUrl(schema))),
    );
    try {
      expect(opened.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    } finally {
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
      await dropSchema(schema);
    }
  });

  it('geb suppressions list and remove (by hash or by address), next to the ledger file', async () => {
    const ledger = join(dir, 'ledger.jsonl');
    const store = await openSuppressions(ledger);
    await store.add(suppression('ada@example.com', Date.now() + DAY));
    await store.add(suppression('bob@example.com', Date.now() + DAY));
    const listed = geb('suppressions', 'list', '--ledger', ledger);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(personalDataHash('ada@example.com'));
    expect(listed.stdout).not.toContain('@');
    expect(geb('suppressions', 'remove', personalDataHash('bob@example.com'), '--ledger', ledger).code).toBe(
      0,
    );
    expect(geb('suppressions', 'remove', '--address', 'ADA@example.com ', '--ledger', ledger).code).toBe(0);
    expect(geb('suppressions', 'remove', '--address', 'ada@example.com', '--ledger', ledger).code).toBe(1);
    const json = JSON.parse(geb('suppressions', 'list', '--json', '--ledger', ledger).stdout) as {
      suppressions: unknown[];
    };
    expect(json.suppressions).toEqual([]);
    expect(geb('suppressions', 'nope').code).toBe(64);
    await store.close();
  });
});
