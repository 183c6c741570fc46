import { describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../../src/delivery/ledger/postgres-ledger.js';
import { dropSchema, postgresUrl, uniqueSchema } from '../../support/postgres.js';
import { ledgerContract } from './contract.js';

ledgerContract('PostgreSQL', () => {
  const schema = uniqueSchema();
  return Promise.resolve({
    open: () => PostgresLedger.open(postgresUrl(schema)),
    destroy: () => dropSchema(schema),
  });
});

describe('PostgreSQL ledger', () => {
  it('sends the claims of one turn as one statement', async () => {
    const schema = uniqueSchema();
    const ledger = await PostgresLedger.open(postgresUrl(schema));
    try {
      const origin = { topic: 't', partition: 0, offset: '1', key: null, owner: 'o' };
      const before = ledger.claimStatements;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => ledger.begin({ rule: 'r', idempotencyKey: `k${i}`, ...origin })),
      );
      expect(results.every((r) => r.claimed)).toBe(true);
      expect(ledger.claimStatements).toBe(before + 1);
      expect(await ledger.query({ state: 'pending', limit: 100 })).toHaveLength(50);
    } finally {
      await ledger.close();
      await dropSchema(schema);
    }
  });
});
