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
