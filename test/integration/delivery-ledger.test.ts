import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/delivery/ledger/file-ledger.js';
import { deliveriesHandler } from '../../src/delivery/ledger/history.js';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  tempLedgerFile,
  writeRulesFile,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** Runs `geb deliveries ...` as a user does: the CLI in its own process. */
async function geb(
  args: string[],
  ledgerUrl: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', LEDGER_URL: ledgerUrl, ...env } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the delivery ledger in the pipeline (real broker, simulator, embedded ledger)', () => {
  const topic = uniqueName('ledger.orders');
  const ledgerUrl = tempLedgerFile();
  let simulator: GenesysSimulator;
  let rulesFile: string;

  const env = (groupId: string) => ({
    ...kafkaEnv(),
    KAFKA_GROUP_ID: groupId,
    RULES_FILE: rulesFile,
    ...simulatorEnv(simulator),
    LEDGER_URL: ledgerUrl,
  });
  const runUntilCommitted = async (groupId: string) => {
    const running = await startTestBridge(env(groupId));
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 2, {
      what: 'both events to be committed',
    });
    await running.bridge.close();
    return running.logs;
  };

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: receipt-email
    topics: [${topic}]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "Receipt {{ orderId }}"
        text: "Thanks for order {{ orderId }}."
  - name: survey-email
    topics: [${topic}]
    delivery: at-least-once
    action:
      agentlessEmail:
        from: { email: survey@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "How was order {{ orderId }}?"
        text: "Tell us."
`);
    // A run that died after claiming offset 0 for both rules, with no outcome recorded.
    const seeded = FileLedger.open(ledgerUrl);
    for (const rule of ['receipt-email', 'survey-email']) {
      await seeded.begin({
        rule,
        idempotencyKey: `${topic}/0/0`,
        topic,
        partition: 0,
        offset: '0',
        key: 'order-1',
        owner: 'crashed-bridge',
      });
    }
    await seeded.close();
    await produce(topic, [
      {
        key: 'order-1',
        value: { orderId: 'A-1', customer: { email: 'ada@example.com' } },
        headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
      },
      { key: 'order-2', value: { orderId: 'A-2', customer: {} } },
    ]);
  });

  afterAll(async () => {
    await simulator?.close();
  });

  it('resolves a pending delivery of a crashed run by the rule policy, and skips every redelivery', async () => {
    const firstLogs = await runUntilCommitted(uniqueName('geb-first'));
    // at-most-once (the default) did not send the receipt; at-least-once sent the survey again.
    const emails = simulator.received(AGENTLESS_EMAIL_PATH);
    expect(emails.map((e) => (e.body as { subject: string }).subject)).toEqual(['How was order A-1?']);
    const inDoubt = firstLogs.records().filter((r) => r['outcome'] === 'in-doubt');
    expect(inDoubt.map((r) => r['rule'])).toEqual(['receipt-email']);
    expect(firstLogs.text).not.toContain('ada@example.com');
    // No RECIPIENT_HASH_KEY here: one warning line at start-up says what that means.
    expect(firstLogs.records().filter((r) => String(r['msg']).includes('RECIPIENT_HASH_KEY'))).toMatchObject([
      { level: 'warn', msg: expect.stringContaining('unkeyed') as unknown },
    ]);

    // A new group on the same ledger gets every event again: nothing more is sent or dead-lettered.
    const secondLogs = await runUntilCommitted(uniqueName('geb-second'));
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(1);
    const outcomes = secondLogs.records().filter((r) => r['msg'] === 'delivery');
    expect(outcomes.map((r) => r['outcome'])).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);

    const ledger = FileLedger.open(ledgerUrl, { readOnly: true });
    const records = await ledger.query({ topic });
    expect(records.map((r) => [r.rule, r.offset, r.state, r.skipped]).sort()).toEqual([
      ['receipt-email', '0', 'in-doubt', 1],
      ['receipt-email', '1', 'dead-lettered', 1],
      ['survey-email', '0', 'sent', 1],
      ['survey-email', '1', 'dead-lettered', 1],
    ]);
    const sent = records.find((r) => r.state === 'sent');
    expect(sent).toMatchObject({
      attempts: 1,
      traceId: TRACE_ID,
      genesysId: (emails[0]?.response as { conversationId: string }).conversationId,
      correlationId: emails[0]?.correlationId,
    });
    expect(JSON.stringify(records)).not.toContain('ada@example.com');

    // What the admin server answers at /deliveries.
    const handler = deliveriesHandler(ledger);
    const answer = await handler(new URL(`http://admin/deliveries?event=${topic}/0/1&rule=receipt-email`));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      deliveries: [{ event: `${topic}/0/1`, state: 'dead-lettered', errorCode: 'TEMPLATE_VARIABLE_MISSING' }],
    });
    expect((await handler(new URL('http://admin/deliveries?since=1h'))).status).toBe(400);
    await ledger.close();
  });

  it('forgets the claim of a delivery stopped while paused before reaching Genesys, so the restart sends it', async () => {
    const pausedTopic = uniqueName('ledger.paused');
    const groupId = uniqueName('geb-paused');
    const pausedLedger = tempLedgerFile();
    await createTopic(pausedTopic);
    const pausedRules = await writeRulesFile(`
version: 1
rules:
  - name: paused-email
    topics: [${pausedTopic}]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "paused {{ id }}"
        text: "Hello."
`);
    await produce(pausedTopic, [{ key: 'p-1', value: { id: 'p-1', email: 'bo@example.com' } }]);
    const base = { ...env(groupId), RULES_FILE: pausedRules, LEDGER_URL: pausedLedger };

    const paused = await startTestBridge({ ...base, GENESYS_CLIENT_SECRET: 'not-the-secret' });
    await waitFor(() => paused.logs.text.includes('delivery paused'), { what: 'the delivery to pause' });
    await paused.bridge.close();
    const reader = FileLedger.open(pausedLedger, { readOnly: true });
    expect(await reader.query({ topic: pausedTopic })).toEqual([]);
    await reader.close();

    const fixed = await startTestBridge(base);
    await waitFor(async () => (await committedOffsets(groupId, pausedTopic)).get(0) === 1, {
      what: 'the event to be committed',
    });
    await fixed.bridge.close();
    const sent = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .filter((r) => (r.body as { subject: string }).subject === 'paused p-1');
    expect(sent).toHaveLength(1);
    const after = FileLedger.open(pausedLedger, { readOnly: true });
    expect((await after.query({ topic: pausedTopic })).map((r) => r.state)).toEqual(['sent']);
    await after.close();
  });

  it('geb deliveries show prints the conversationId and trace id of a delivery, and the reason of a dead letter', async () => {
    const sent = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .find((r) => (r.body as { subject: string }).subject === 'How was order A-1?');
    const conversationId = (sent?.response as { conversationId: string }).conversationId;

    const delivered = await geb(
      ['deliveries', 'show', '--event', `${topic}/0/0`, '--rule', 'survey-email'],
      ledgerUrl,
    );
    expect(delivered.code).toBe(0);
    expect(delivered.stdout).toMatch(new RegExp(`conversationId\\s+${conversationId}`));
    expect(delivered.stdout).toMatch(new RegExp(`traceId\\s+${TRACE_ID}`));
    expect(delivered.stdout).toContain('SENT');

    const dead = await geb(['deliveries', 'show', '--key', 'order-2', '--since', '1h'], ledgerUrl);
    expect(dead.code).toBe(0);
    expect(dead.stdout).toContain('DEAD-LETTERED');
    expect(dead.stdout).toMatch(/reason\s+TEMPLATE_VARIABLE_MISSING: .*customer\.email/);

    const json = await geb(['deliveries', 'show', '--rule', 'receipt-email', '--json'], ledgerUrl);
    const body = JSON.parse(json.stdout) as { deliveries: { state: string; reason?: string }[] };
    expect(body.deliveries.map((d) => d.state).sort()).toEqual(['dead-lettered', 'in-doubt']);

    const nothing = await geb(['deliveries', 'show', '--event', `${topic}/0/99`], ledgerUrl);
    expect(nothing.code).toBe(1);
    expect(nothing.stdout).toContain('no deliveries found');

    // Recorded without a key: found by the unkeyed hash, not by a keyed one.
    const recipient = ['deliveries', 'show', '--recipient', ' Ada@Example.com', '--json'];
    const unkeyed = await geb(recipient, ledgerUrl);
    expect(unkeyed.code).toBe(0);
    const found = JSON.parse(unkeyed.stdout) as { deliveries: { rule: string; state: string }[] };
    expect(found.deliveries.map((d) => `${d.rule} ${d.state}`)).toEqual(['survey-email sent']);
    const keyed = await geb(recipient.slice(0, -1), ledgerUrl, { RECIPIENT_HASH_KEY: KEY });
    expect(keyed.code).toBe(1);
    expect(keyed.stderr).not.toContain('RECIPIENT_HASH_KEY');
  });

  it('keys recipient hashes with RECIPIENT_HASH_KEY; geb deliveries --recipient and /deliveries (with its token) find them', async () => {
    const keyedTopic = uniqueName('ledger.keyed');
    const groupId = uniqueName('geb-keyed');
    const keyedLedger = tempLedgerFile();
    await createTopic(keyedTopic);
    const keyedRules = await writeRulesFile(`
version: 1
rules:
  - name: keyed-email
    topics: [${keyedTopic}]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: "keyed {{ id }}"
        text: "Hello."
`);
    await produce(keyedTopic, [
      { key: 'k-1', value: { id: 'k-1', email: 'grace@example.com' } },
      { key: 'k-2', value: { id: 'k-2', email: 'linus@example.com' } },
    ]);
    const running = await startTestBridge({
      ...env(groupId),
      RULES_FILE: keyedRules,
      LEDGER_URL: keyedLedger,
      RECIPIENT_HASH_KEY: KEY,
      ADMIN_TOKEN,
    });
    try {
      await waitFor(async () => (await committedOffsets(groupId, keyedTopic)).get(0) === 2, {
        what: 'both events to be committed',
      });
      expect(running.logs.text).not.toContain('RECIPIENT_HASH_KEY is not set');
      const grace = await geb(['deliveries', 'show', '--recipient', 'GRACE@example.com'], keyedLedger, {
        RECIPIENT_HASH_KEY: KEY,
      });
      expect(grace.code).toBe(0);
      expect(grace.stdout).toContain(`${keyedTopic}/0/0  rule keyed-email  SENT`);
      expect(grace.stdout).not.toContain(`${keyedTopic}/0/1`);
      const hash = /recipientHash\s+([0-9a-f]{16})/.exec(grace.stdout)?.[1] ?? '';
      // The hash the bridge logged is the keyed one: not what a dictionary of addresses gives.
      expect(running.logs.records().some((r) => r['recipient'] === hash)).toBe(true);
      expect(hash).not.toBe(createHash('sha256').update('grace@example.com').digest('hex').slice(0, 16));

      // Another key, or none, does not find it (and says why when none is set).
      const otherKey = await geb(['deliveries', 'show', '--recipient', 'grace@example.com'], keyedLedger, {
        RECIPIENT_HASH_KEY: 'another-recipient-hash-key',
      });
      expect(otherKey.code).toBe(1);
      const noKey = await geb(['deliveries', 'show', '--recipient', 'grace@example.com'], keyedLedger);
      expect(noKey.code).toBe(1);
      expect(noKey.stderr).toContain('RECIPIENT_HASH_KEY');

      // The admin server serves the same history, but only with the bearer token.
      const url = `${running.bridge.adminUrl}/deliveries?recipientHash=${hash}`;
      const anonymous = await fetch(url);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
      const authorised = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(authorised.status).toBe(200);
      const answer = (await authorised.json()) as { deliveries: { event: string; recipientHash: string }[] };
      expect(answer.deliveries).toMatchObject([{ event: `${keyedTopic}/0/0`, recipientHash: hash }]);
      expect((await fetch(`${running.bridge.adminUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${running.bridge.adminUrl}/metrics`)).status).toBe(200);
    } finally {
      await running.bridge.close();
    }
  });
});

const KEY = 'the-recipient-hash-key-of-tests';
const ADMIN_TOKEN = 'the-admin-token-of-tests-0123';
