import { parseArgs } from 'node:util';
import { loadRecipientHashKey, settingOf } from '../config.js';
import { openSuppressions } from '../delivery/suppressions.js';
import { recipientHasher } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const SUPPRESSIONS_USAGE = `  suppressions list         Recipients not sent to because they bounced (by recipient hash), from where
                            the ledger is (LEDGER_URL): hash, until when, why, rule, conversation.
      --json                JSON.
  suppressions remove HASH  Lifts a suppression, by recipient hash (as list and the ledger show it).
      --address ADDR        Instead of HASH: the email address or number (hashed here, never stored).
      --ledger URL          Instead of LEDGER_URL (both subcommands).`;

export async function suppressionsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'list' && sub !== 'remove') {
    process.stderr.write(`geb suppressions: expected "list" or "remove"\n\n${SUPPRESSIONS_USAGE}\n`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        json: { type: 'boolean', default: false },
        address: { type: 'string' },
        ledger: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`geb suppressions ${sub}: ${(error as Error).message}\n\n${SUPPRESSIONS_USAGE}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const url = values.ledger ?? process.env['LEDGER_URL']?.trim() ?? settingOf('LEDGER_URL').default ?? '';
  const store = await openSuppressions(url);
  try {
    if (sub === 'list') {
      const list = await store.list();
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ suppressions: list }, null, 2)}\n`);
      } else if (list.length === 0) {
        process.stdout.write(`no suppressions in ${store.description}\n`);
      } else {
        for (const s of list) {
          process.stdout.write(
            `${s.recipientHash}  until ${s.until}  ${s.reason}${s.rule !== undefined ? `  rule ${s.rule}` : ''}${s.conversationId !== undefined ? `  conversation ${s.conversationId}` : ''}\n`,
          );
        }
      }
      return EXIT.ok;
    }
    // Hashed with the bridge's key (RECIPIENT_HASH_KEY), as the suppression was stored.
    const hash =
      values.address !== undefined ? recipientHasher(loadRecipientHashKey())(values.address) : positionals[0];
    if (hash === undefined || positionals.length > (values.address !== undefined ? 0 : 1)) {
      process.stderr.write(`geb suppressions remove: name one recipient hash, or --address\n`);
      return EXIT.usage;
    }
    if (await store.remove(hash)) {
      process.stdout.write(`suppression of ${hash} lifted\n`);
      return EXIT.ok;
    }
    process.stderr.write(`geb suppressions remove: ${hash} is not suppressed\n`);
    return EXIT.failure;
  } finally {
    await store.close();
  }
}
