import { FileLedger } from './file-ledger.js';
import type { Ledger } from './ledger.js';
import { PostgresLedger } from './postgres-ledger.js';

export interface OpenLedgerOptions {
  /** Records last updated longer ago are dropped at open (file) or by `expire` (both). */
  readonly retentionMs?: number;
  /** For readers next to a running bridge (`geb deliveries`): no lock, no writes. */
  readonly readOnly?: boolean;
}

/** LEDGER_URL: `postgres://` or `postgresql://` for the shared backend, anything else is a file path. */
export async function openLedger(url: string, options: OpenLedgerOptions = {}): Promise<Ledger> {
  if (isPostgresUrl(url)) return PostgresLedger.open(url);
  return FileLedger.open(url.startsWith('file://') ? new URL(url).pathname : url, options);
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}
