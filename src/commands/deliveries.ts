import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadRecipientHashKey, settingOf } from '../config.js';
import { queryHistory, formatDeliveries, type DeliveryView } from '../delivery/ledger/history.js';
import type { Ledger } from '../delivery/ledger/ledger.js';
import { isPostgresUrl, openLedger } from '../delivery/ledger/open.js';
import { recipientHasher } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const DELIVERIES_USAGE = `  deliveries show           What happened to an event: its deliveries from the ledger (LEDGER_URL).
      --event T/P/O         The event at topic T, partition P, offset O.
      --key KEY             Events with this Kafka message key (or idempotency key), matched exactly; when
                            none match, recent keys containing KEY (or its digits) are listed.
      --rule NAME           Deliveries of this rule.
      --recipient ADDRESS   Deliveries to this email address or phone number, found by its hash (with the
                            bridge's RECIPIENT_HASH_KEY or RECIPIENT_HASH_KEY_FILE, which must be set alike).
      --since 1h            Only records updated since (90s, 15m, 1h, 7d, or an ISO-8601 time).
      --state S             pending, sent, failed, dead-lettered, in-doubt, delivered, bounced,
                            failed-downstream, unknown, expired or suppressed.
      --limit N             At most N records, newest first (default 100).
      --json                JSON, as the admin server's GET /deliveries answers.
      --ledger URL          Instead of LEDGER_URL.`;

export async function deliveriesCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'show') {
    process.stderr.write(`geb deliveries: expected "show"\n\n${DELIVERIES_USAGE}\n`);
    return EXIT.usage;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        event: { type: 'string' },
        key: { type: 'string' },
        rule: { type: 'string' },
        recipient: { type: 'string' },
        since: { type: 'string' },
        state: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean', default: false },
        ledger: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`geb deliveries show: ${(error as Error).message}\n\n${DELIVERIES_USAGE}\n`);
    return EXIT.usage;
  }
  let recipientHash: string | undefined;
  let unkeyed = false;
  if (values.recipient !== undefined) {
    let key;
    try {
      key = loadRecipientHashKey();
    } catch (error) {
      process.stderr.write(`geb deliveries show: ${(error as Error).message}\n`);
      return EXIT.config;
    }
    recipientHash = recipientHasher(key)(values.recipient);
    unkeyed = key === undefined;
  }
  const url = values.ledger ?? process.env['LEDGER_URL']?.trim() ?? settingOf('LEDGER_URL').default ?? '';
  const missing = missingLedgerFile(url);
  if (missing) {
    process.stderr.write(`geb deliveries show: ${missing}\n`);
    return EXIT.config;
  }
  // Read-only: the file ledger may be held by a running bridge, whose lock this must not take.
  const ledger = await openLedger(url, { readOnly: true });
  try {
    const { recipient: _address, ...params } = values;
    const { status, body } = await queryHistory(ledger, { ...params, recipientHash });
    if ('error' in body) {
      process.stderr.write(`geb deliveries show: ${body.error}\n`);
      return status === 400 ? EXIT.usage : EXIT.failure;
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    } else if (body.deliveries.length === 0) {
      process.stdout.write(`no deliveries found in ${ledger.description}\n`);
      if (unkeyed) {
        process.stderr.write(
          "note: RECIPIENT_HASH_KEY (or RECIPIENT_HASH_KEY_FILE) is not set, so the unkeyed hash was looked for: set the bridge's key\n",
        );
      }
      if (values.key !== undefined) process.stdout.write(await nearKeys(ledger, values.key));
    } else {
      process.stdout.write(`${formatDeliveries(body.deliveries satisfies DeliveryView[])}\n`);
    }
    return body.deliveries.length > 0 ? EXIT.ok : EXIT.failure;
  } finally {
    await ledger.close();
  }
}

/**
 * An empty answer must not hide a wrong path: a file ledger that does not exist is a mistake in LEDGER_URL or
 * --ledger (or a bridge that never ran there), not "no deliveries".
 */
function missingLedgerFile(url: string): string | undefined {
  if (url === '' || isPostgresUrl(url)) return undefined;
  const path = resolve(url.startsWith('file://') ? new URL(url).pathname : url);
  if (existsSync(path)) return undefined;
  return (
    `the ledger file ${path} does not exist: give the LEDGER_URL the bridge runs with ` +
    `(LEDGER_URL=… or --ledger PATH; a postgres:// URL for the shared ledger)`
  );
}

/** How many recent records the near-key hint looks through: enough for an incident, bounded for the database. */
const NEAR_KEY_SCAN = 10_000;

/**
 * `--key` is exact (an index lookup in both backends); when it finds nothing, the keys of recent records that
 * contain it, or its longest run of digits (`A-1001` → `order-1001`), are offered as next commands.
 */
async function nearKeys(ledger: Ledger, wanted: string): Promise<string> {
  const needle = wanted.toLowerCase();
  const digits = (wanted.match(/\d{3,}/g) ?? []).sort((a, b) => b.length - a.length)[0];
  const counts = new Map<string, number>();
  for (const record of await ledger.query({ limit: NEAR_KEY_SCAN })) {
    for (const key of new Set([record.key, record.idempotencyKey])) {
      if (key === undefined || key === null || key === wanted) continue;
      const lower = key.toLowerCase();
      if (lower.includes(needle) || (digits !== undefined && key.includes(digits))) {
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  if (counts.size === 0)
    return `no recent key contains "${wanted}"${digits ? ` or "${digits}"` : ''} either\n`;
  const near = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5);
  return (
    `--key is matched exactly (the Kafka message key or the idempotency key); recent keys like it:\n` +
    near
      .map(([key, n]) => `  geb deliveries show --key ${JSON.stringify(key)}    (${n} record(s))\n`)
      .join('')
  );
}
