import type { DeliveryRecord } from '../../src/delivery/ledger/ledger.js';
import { openLedger } from '../../src/delivery/ledger/open.js';

/** Every record of `rule` in the ledger at `url`, read as `geb deliveries` reads it (read-only, next to a bridge). */
export async function ledgerRecords(url: string, rule: string): Promise<DeliveryRecord[]> {
  const ledger = await openLedger(url, { readOnly: true });
  try {
    return await ledger.query({ rule, limit: 10_000 });
  } finally {
    await ledger.close();
  }
}
