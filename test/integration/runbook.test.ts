/**
 * The commands of docs/runbook.md, run as an SRE runs them against a real broker and a bridge started by `geb run`:
 * one event sent, one dead-lettered, one matching no rule; then `geb deliveries show`, `geb dlq show` and SIGUSR2.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { simulatorEnv, tempLedgerFile, writeRulesFile, kafkaEnv } from '../support/bridge.js';
import { committedOffsets, createTopic, produce, topicSize, uniqueName, waitFor } from '../support/kafka.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `geb …` in its own process, as the runbook has it typed. */
async function geb(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the SRE runbook on a real broker', () => {
  const topic = uniqueName('runbook.orders');
  const groupId = uniqueName('geb-runbook');
  const ledgerUrl = tempLedgerFile();
  let simulator: GenesysSimulator;
  let rulesFile: string;
  let bridge: ChildProcess;
  let output = '';

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: receipt-email
    topics: [${topic}]
    match: { type: [OrderPaid] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "Receipt {{ orderId }}"
        text: "Thanks, {{ customer.name }}."
`);
    await produce(topic, [
      {
        key: 'order-1001',
        value: { type: 'OrderPaid', orderId: '1001', customer: { email: 'ada@example.com', name: 'Ada' } },
      },
      // No address: the template cannot be rendered, so the event is dead-lettered.
      {
        key: 'order-1002',
        value: { type: 'OrderPaid', orderId: '1002', customer: { name: 'Bob Secretname' } },
      },
      { key: 'order-1003', value: { type: 'OrderRefunded', orderId: '1003' } },
    ]);
    // `geb run` as users start it, at the default log level.
    bridge = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'run'], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...kafkaEnv(),
        KAFKA_GROUP_ID: groupId,
        KAFKA_START_FROM: 'earliest',
        RULES_FILE: rulesFile,
        LEDGER_URL: ledgerUrl,
        ADMIN_PORT: '0',
        OTEL_SDK_DISABLED: 'true',
        LOG_LEVEL: 'info',
        ...simulatorEnv(simulator),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bridge.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    bridge.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    // The group's coordinator may still be loading when the first look comes: not yet an answer.
    const committed = () =>
      committedOffsets(groupId, topic).then(
        (o) => o.get(0) ?? 0,
        () => 0,
      );
    await waitFor(async () => (await committed()) === 3, {
      what: 'the three events to be committed',
      timeoutMs: 60_000,
    });
    await waitFor(async () => (await topicSize(`${topic}.dlq`)) === 1, { what: 'one dead letter' });
  }, 120_000);

  afterAll(async () => {
    if (bridge && bridge.exitCode === null) {
      const exited = new Promise((done) => bridge.once('exit', done));
      bridge.kill('SIGTERM');
      const timer = setTimeout(() => bridge.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await simulator?.close();
    await rm(dirname(ledgerUrl), { recursive: true, force: true });
    await rm(dirname(rulesFile), { recursive: true, force: true });
  });

  const env = () => ({ LEDGER_URL: ledgerUrl, ...kafkaEnv() });

  it('geb deliveries show --key: the sent one, with its conversation id', async () => {
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(1);
    const shown = await geb(['deliveries', 'show', '--key', 'order-1001'], env());
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^${topic}/0/0  rule receipt-email  SENT`, 'm'));
    expect(shown.stdout).toMatch(/conversationId {2}\S+/);
    expect(shown.stdout).not.toContain('ada@example.com');
  });

  it('geb deliveries show --key: the dead-lettered one, with its reason', async () => {
    const shown = await geb(['deliveries', 'show', '--key', 'order-1002'], env());
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^${topic}/0/1  rule receipt-email  DEAD-LETTERED`, 'm'));
    expect(shown.stdout).toContain('TEMPLATE_VARIABLE_MISSING');
  });

  it('geb deliveries show --key with a key that is not the Kafka key: names the near keys', async () => {
    const shown = await geb(['deliveries', 'show', '--key', 'A-1001'], env());
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('no deliveries found');
    expect(shown.stdout).toContain('geb deliveries show --key "order-1001"');
    expect(shown.stdout).not.toContain('order-1002');
  });

  it('geb deliveries show with a ledger path that does not exist: says so, not "no deliveries"', async () => {
    const wrong = join(dirname(ledgerUrl), 'nope', 'deliveries.jsonl');
    const shown = await geb(['deliveries', 'show', '--key', 'order-1001', '--ledger', wrong], env());
    expect(shown.code).toBe(78);
    expect(shown.stderr).toContain(`the ledger file ${wrong} does not exist`);
    expect(shown.stdout).toBe('');
  });

  it('geb dlq show: the dead letter with its reason, the body masked', async () => {
    const shown = await geb(['dlq', 'show', '--topic', `${topic}.dlq`], env());
    expect(shown.code).toBe(0);
    const lines = shown.stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^${topic}\\.dlq/0/0  TEMPLATE_VARIABLE_MISSING  stage render  rule receipt-email  at \\S+Z$`,
      ),
    );
    expect(shown.stdout).toMatch(new RegExp(`source event {4}${topic}/0/1`));
    expect(shown.stdout).toMatch(/key {13}order-1002/);
    expect(shown.stdout).toMatch(/reason {10}.*customer\.email/);
    expect(shown.stdout).toMatch(/body {12}\(masked: \d+ bytes, sha256 [0-9a-f]{12}…/);
    expect(shown.stdout).not.toContain('Secretname');

    const bodies = await geb(['dlq', 'show', '--topic', `${topic}.dlq`, '--show-bodies', '--json'], env());
    const parsed = JSON.parse(bodies.stdout) as { deadLetters: { body: string; code: string }[] };
    expect(parsed.deadLetters).toHaveLength(1);
    expect(parsed.deadLetters[0]?.code).toBe('TEMPLATE_VARIABLE_MISSING');
    expect(JSON.parse(parsed.deadLetters[0]?.body ?? '')).toMatchObject({
      customer: { name: 'Bob Secretname' },
    });
  });

  it('geb dlq show on a topic that does not exist: says so', async () => {
    const shown = await geb(['dlq', 'show', '--topic', `${topic}.nope`], env());
    expect(shown.code).toBe(1);
    expect(shown.stderr).toContain(`topic ${topic}.nope does not exist`);
  });

  it('SIGUSR2 turns on debug logging: "matched no rule" becomes visible without a restart', async () => {
    expect(output).not.toContain('matched no rule');
    bridge.kill('SIGUSR2');
    await waitFor(() => output.includes('log level changed from info to debug'), {
      what: 'the level change',
    });
    await produce(topic, [{ key: 'order-1004', value: { type: 'OrderRefunded', orderId: '1004' } }]);
    await waitFor(() => output.includes('event matched no rule'), { what: '"matched no rule" in the log' });
    const line = output.split('\n').find((l) => l.includes('event matched no rule')) ?? '';
    expect(JSON.parse(line)).toMatchObject({
      level: 'debug',
      event: { topic, offset: '3', key: 'order-1004' },
    });
  });
});
