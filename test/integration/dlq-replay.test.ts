import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, writeRulesFile, type InProcessBridge, simulatorEnv } from '../support/bridge.js';
import {
  brokers,
  committedOffsets,
  createTopic,
  produce,
  readTopic,
  uniqueName,
  waitFor,
} from '../support/kafka.js';

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
    KAFKA_BROKERS: brokers().join(','),
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
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', KAFKA_BROKERS: brokers().join(',') } },
    );
    expect(stdout).toContain(`replayed 2 of 3 dead-lettered event(s) (2 to ${topic})`);

    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length >= 2, {
      what: 'the replayed events to be delivered',
    });
    const to = simulator
      .received(AGENTLESS_EMAIL_PATH)
      .map((r) => (r.body as { toAddresses: { email: string }[] }).toAddresses[0]?.email);
    expect(to).toEqual(['ada@example.com', 'bob@example.com']);

    // On the source topic the replayed records carry the producer's headers and none of the bridge's.
    const records = await readTopic(topic, 5);
    const replayed = records.slice(3);
    expect(replayed.map((r) => r.key?.toString())).toEqual(['u-1', 'u-3']);
    expect(replayed.map((r) => r.headers?.['trace']?.toString())).toEqual(['t1', 't3']);
    for (const r of replayed) {
      expect(Object.keys(r.headers ?? {}).filter((h) => h.startsWith('geb.'))).toEqual([]);
    }
  });
});
