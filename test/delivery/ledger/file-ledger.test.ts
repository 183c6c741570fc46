import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLedger } from '../../../src/delivery/ledger/file-ledger.js';
import { ledgerContract } from './contract.js';
import { tempDir } from '../../support/temp.js';

ledgerContract('embedded file', async () => {
  const dir = await tempDir('geb-ledger-');
  const path = join(dir, 'deliveries.jsonl');
  return {
    open: () => Promise.resolve(FileLedger.open(path)),
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('embedded file ledger', () => {
  const origin = { topic: 't', partition: 0, offset: '1', key: null, owner: 'o' };

  it('ignores a line torn by a crash mid-write and compacts the file on open', async () => {
    const dir = await tempDir('geb-ledger-');
    const path = join(dir, 'deliveries.jsonl');
    const ledger = FileLedger.open(path);
    await ledger.begin({ rule: 'r', idempotencyKey: 'a', ...origin });
    await ledger.markSent({ rule: 'r', idempotencyKey: 'a' }, { genesysId: 'g', attempts: 1 });
    await ledger.close();
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(2);
    await appendFile(path, '{"rule":"r","idempotencyKey":"b","sta');

    const reopened = FileLedger.open(path);
    expect(await reopened.lookup({ rule: 'r', idempotencyKey: 'a' })).toMatchObject({ state: 'sent' });
    expect(await reopened.query({})).toHaveLength(1);
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1);
    await reopened.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the changes of one turn with one fdatasync, and resolves none before it', async () => {
    const dir = await tempDir('geb-ledger-');
    const path = join(dir, 'deliveries.jsonl');
    const ledger = FileLedger.open(path);
    try {
      const before = ledger.syncs;
      const resolvedAt: number[] = [];
      const claims = Array.from({ length: 50 }, (_, i) =>
        ledger.begin({ rule: 'r', idempotencyKey: `k${i}`, ...origin }).then((r) => {
          // When a claim resolves, its line is on disk already (a crash now would keep it).
          resolvedAt.push(ledger.syncs);
          return r;
        }),
      );
      expect(ledger.syncs).toBe(before);
      const results = await Promise.all(claims);
      expect(results.every((r) => r.claimed)).toBe(true);
      expect(ledger.syncs).toBe(before + 1);
      expect(resolvedAt.every((n) => n === before + 1)).toBe(true);
      expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(50);
    } finally {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes concurrent changes in shared batches, every one of them durable', async () => {
    const dir = await tempDir('geb-ledger-');
    const path = join(dir, 'deliveries.jsonl');
    const ledger = FileLedger.open(path);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        ledger
          .begin({ rule: 'r', idempotencyKey: `k${i}`, ...origin })
          .then(() =>
            ledger.markSent({ rule: 'r', idempotencyKey: `k${i}` }, { genesysId: `g${i}`, attempts: 1 }),
          ),
      ),
    );
    // Not closed: what a crash right now would leave is what is in the file.
    const text = await readFile(path, 'utf8');
    expect(text.trim().split('\n')).toHaveLength(600);
    await ledger.close();
    const reopened = FileLedger.open(path);
    const records = await reopened.query({ state: 'sent', limit: 1000 });
    expect(records).toHaveLength(300);
    await reopened.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second writer while the first lives, and takes over a lock left by a dead process', async () => {
    const dir = await tempDir('geb-ledger-');
    const path = join(dir, 'deliveries.jsonl');
    const ledger = FileLedger.open(path);
    expect(() => FileLedger.open(path)).toThrow(/already open/);
    await ledger.close();

    await writeFile(`${path}.lock`, String(process.ppid));
    expect(() => FileLedger.open(path)).toThrow(/in use by process/);
    await writeFile(`${path}.lock`, '999999999');
    const taken = FileLedger.open(path);
    const reader = FileLedger.open(path, { readOnly: true });
    expect(await reader.query({})).toEqual([]);
    await taken.close();
    await rm(dir, { recursive: true, force: true });
  });
});
