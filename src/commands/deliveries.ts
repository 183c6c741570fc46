import { parseArgs } from 'node:util';
import { settingOf } from '../config.js';
import { queryHistory, formatDeliveries, type DeliveryView } from '../delivery/ledger/history.js';
import { openLedger } from '../delivery/ledger/open.js';
import { EXIT } from './signals.js';

export const DELIVERIES_USAGE = `  deliveries show           What happened to an event: its deliveries from the ledger (LEDGER_URL).
      --event T/P/O         The event at topic T, partition P, offset O.
      --key KEY             Events with this Kafka message key (or idempotency key).
      --rule NAME           Deliveries of this rule.
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
  const url = values.ledger ?? process.env['LEDGER_URL']?.trim() ?? settingOf('LEDGER_URL').default ?? '';
  // Read-only: the file ledger may be held by a running bridge, whose lock this must not take.
  const ledger = await openLedger(url, { readOnly: true });
  try {
    const { status, body } = await queryHistory(ledger, values);
    if ('error' in body) {
      process.stderr.write(`geb deliveries show: ${body.error}\n`);
      return status === 400 ? EXIT.usage : EXIT.failure;
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    } else if (body.deliveries.length === 0) {
      process.stdout.write(`no deliveries found in ${ledger.description}\n`);
    } else {
      process.stdout.write(`${formatDeliveries(body.deliveries satisfies DeliveryView[])}\n`);
    }
    return body.deliveries.length > 0 ? EXIT.ok : EXIT.failure;
  } finally {
    await ledger.close();
  }
}
