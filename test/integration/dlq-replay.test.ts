import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { DEAD_LETTER_HEADERS, REPLAY_HEADERS } from '../../src/kafka/dead-letter.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  tempLedgerFile,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, readTopic, uniqueName, waitFor } from '../support/kafka.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

const rules = (topic: string, emailField: string) => `
version: 1
rules:
  - name: welcome-email
    topics: [${topic}]
    match: { type: [SignedUp] }
    action:
      agentlessEmail:
        from: { email: hello@shop.example }
        to: { email: "{{ ${emailField} }}" }
        subject: "Welcome {{ name }}"
        text: "Hello"
`;

describe('geb dlq replay', () => {
  const topic = uniqueName('signups');
  const groupId = uniqueName('geb');
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;

  const env = async (rulesYaml: string) => ({
    ...kafkaEnv(),
    KAFKA_GROUP_ID: groupId,
    RULES_FILE: await writeRulesFile(rulesYaml),
    ...simulatorEnv(simulator),
  });

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('republishes the picked events with their original headers, and after the rule is fixed they are delivered', async () => {
    // The rule names a field the events do not have: every SignedUp event is dead-lettered.
    running = await startTestBridge(await env(rules(topic, 'mail')));
    await produce(topic, [
      {
        key: 'u-1',
        value: { type: 'SignedUp', email: 'ada@example.com', name: 'Ada' },
        headers: { trace: 't1' },
      },
      { key: 'u-2', value: 'not json', headers: { trace: 't2' } },
      {
        key: 'u-3',
        value: { type: 'SignedUp', email: 'bob@example.com', name: 'Bob' },
        headers: { trace: 't3' },
      },
    ]);
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 3, {
      what: 'the three events to be dead-lettered and committed',
    });
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(0);
    await running.bridge.close();

    // The fix: the rule reads the right field.
    running = await startTestBridge(await env(rules(topic, 'email')));

    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src', 'cli.ts'),
        'dlq',
        'replay',
        '--topic',
        `${topic}.dlq`,
        '--code',
        'TEMPLATE_VARIABLE_MISSING',
      ],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...kafkaEnv() } },
    );
    expect(stdout).toContain(`replayed 2 of 3 dead-lettered event(s) (2 to ${topic})`);

    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 2, {
      what: 'the replayed events to be delivered',
    });
    const to = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .map((r) => (r.body as { toAddresses: { email: string }[] }).toAddresses[0]?.email);
    // Different keys: delivered concurrently, in any order.
    expect(to.sort()).toEqual(['ada@example.com', 'bob@example.com']);

    // On the source topic the replayed records carry the producer's headers, and of the bridge's only the replay's:
    // the rule replayed and the original idempotency keys.
    const records = await readTopic(topic, 5);
    // Dead-lettered concurrently (different keys), so replayed in any order: sorted by key.
    const replayed = records
      .slice(3)
      .sort((a, b) => (a.key?.toString() ?? '').localeCompare(b.key?.toString() ?? ''));
    expect(replayed.map((r) => r.key?.toString())).toEqual(['u-1', 'u-3']);
    expect(replayed.map((r) => r.headers?.['trace']?.toString())).toEqual(['t1', 't3']);
    for (const [i, r] of replayed.entries()) {
      expect(Object.keys(r.headers ?? {}).filter((h) => h.startsWith('geb.'))).toEqual([
        REPLAY_HEADERS.rule,
        REPLAY_HEADERS.idempotencyKeys,
      ]);
      expect(r.headers?.[REPLAY_HEADERS.rule]?.toString()).toBe('welcome-email');
      expect(JSON.parse(r.headers?.[REPLAY_HEADERS.idempotencyKeys]?.toString() ?? '')).toEqual({
        'welcome-email': `${topic}/0/${i * 2}`,
      });
    }
  });
});

/** Two rules on one event: a welcome email and a CRM copy, each reading its address from a field. */
const twoRules = (topic: string, welcomeField: string, crmField: string) => `
version: 1
rules:
  - name: welcome-email
    topics: [${topic}]
    match: { type: [SignedUp] }
    action:
      agentlessEmail:
        from: { email: hello@shop.example }
        to: { email: "{{ ${welcomeField} }}" }
        subject: "Welcome"
        text: "Hello"
  - name: crm-email
    topics: [${topic}]
    match: { type: [SignedUp] }
    action:
      agentlessEmail:
        from: { email: crm@shop.example }
        to: { email: "{{ ${crmField} }}" }
        subject: "CRM copy"
        text: "Signed up"
`;

describe('geb dlq replay of an event that matched two rules', () => {
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;
  const ledgerFile = tempLedgerFile();

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
    await rm(dirname(ledgerFile), { recursive: true, force: true });
  });

  const start = async (topic: string, groupId: string, rulesYaml: string) => {
    await running?.bridge.close();
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      LEDGER_URL: ledgerFile,
      RULES_FILE: await writeRulesFile(rulesYaml),
      ...simulatorEnv(simulator),
    });
  };
  const replay = async (...args: string[]) =>
    (
      await run(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'dlq', 'replay', ...args],
        {
          cwd: ROOT,
          env: { PATH: process.env['PATH'] ?? '', ...kafkaEnv() },
        },
      )
    ).stdout;
  const subjects = (to: string) =>
    simulator
      .received(AGENTLESS_EMAIL_PATH)
      .filter((r) => (r.body as { toAddresses: { email: string }[] }).toAddresses[0]?.email === to)
      .map((r) => (r.body as { subject: string }).subject);
  const committed = (groupId: string, topic: string, offset: number) =>
    waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === offset, {
      timeoutMs: 30_000,
      what: `the commit of ${topic} to reach ${offset}`,
    });

  it('does not send again the rule that had sent, and a second replay sends nothing', async () => {
    const topic = uniqueName('signups2');
    const groupId = uniqueName('geb');
    await createTopic(topic);
    // The CRM rule reads a field the event lacks: it is dead-lettered, the welcome email is sent.
    await start(topic, groupId, twoRules(topic, 'email', 'crm'));
    await produce(topic, [{ key: 'u-1', value: { type: 'SignedUp', email: 'ada@example.com' } }]);
    await committed(groupId, topic, 1);
    expect(subjects('ada@example.com')).toEqual(['Welcome']);
    const [dead] = await readTopic(`${topic}.dlq`, 1);
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.rule]?.toString()).toBe('crm-email');
    expect(JSON.parse(dead?.headers?.[DEAD_LETTER_HEADERS.idempotencyKeys]?.toString() ?? '')).toEqual({
      'welcome-email': `${topic}/0/0`,
      'crm-email': `${topic}/0/0`,
    });

    await start(topic, groupId, twoRules(topic, 'email', 'email'));
    expect(await replay('--topic', `${topic}.dlq`)).toContain('replayed 1 of 1');
    await committed(groupId, topic, 2);
    expect(subjects('ada@example.com')).toEqual(['Welcome', 'CRM copy']);

    // Replayed again (by mistake, or a duplicate dead letter): the ledger has the CRM delivery as sent.
    expect(await replay('--topic', `${topic}.dlq`)).toContain('replayed 1 of 1');
    await committed(groupId, topic, 3);
    expect(subjects('ada@example.com')).toEqual(['Welcome', 'CRM copy']);
  });

  it("replays one rule with --rule: the event's other rule is not delivered", async () => {
    const topic = uniqueName('signups3');
    const groupId = uniqueName('geb');
    await createTopic(topic);
    // Both rules fail: two dead letters of the same event.
    await start(topic, groupId, twoRules(topic, 'mail', 'crm'));
    await produce(topic, [{ key: 'u-2', value: { type: 'SignedUp', email: 'bob@example.com' } }]);
    await committed(groupId, topic, 1);
    expect(await readTopic(`${topic}.dlq`, 2)).toHaveLength(2);

    await start(topic, groupId, twoRules(topic, 'email', 'email'));
    expect(await replay('--topic', `${topic}.dlq`, '--rule', 'crm-email')).toContain(
      'replayed 1 of 2 dead-lettered event(s)',
    );
    await committed(groupId, topic, 2);
    expect(subjects('bob@example.com')).toEqual(['CRM copy']);

    expect(await replay('--topic', `${topic}.dlq`, '--rule', 'welcome-email')).toContain('replayed 1 of 2');
    await committed(groupId, topic, 3);
    expect(subjects('bob@example.com')).toEqual(['CRM copy', 'Welcome']);
  });
});
