import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { openLedger } from '../../src/delivery/ledger/open.js';
import { DEAD_LETTER_HEADERS } from '../../src/kafka/dead-letter.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  tempLedgerFile,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import {
  committedOffsets,
  createTopic,
  kafka,
  produce,
  readTopic,
  topicSize,
  uniqueName,
  waitFor,
} from '../support/kafka.js';

/** The fault seam: the broker refuses every record larger than the dead-letter topic's max.message.bytes. */
async function setMaxMessageBytes(topic: string, bytes: number): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

describe('a dead-letter write that fails', () => {
  const topic = uniqueName('dlw');
  const dlq = `${topic}.dlq`;
  const groupId = uniqueName('geb');
  const ledgerFile = tempLedgerFile();
  let simulator: GenesysSimulator;
  let running: InProcessBridge | undefined;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    await createTopic(dlq);
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
    await rm(dirname(ledgerFile), { recursive: true, force: true });
  });

  it('is retried, across a restart, until the dead-letter topic has the event: once, and nothing is committed past it before', async () => {
    const env = async () => ({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      LEDGER_URL: ledgerFile,
      RULES_FILE: await writeRulesFile(`
version: 1
rules:
  - name: welcome-email
    topics: [${topic}]
    match: { type: [SignedUp] }
    action:
      agentlessEmail:
        from: { email: hello@shop.example }
        to: { email: "{{ email }}" }
        subject: "Welcome {{ name }}"
        text: "Hello"
`),
      ...simulatorEnv(simulator),
    });
    const fastRetries = { baseDelayMs: 50, maxDelayMs: 200, pauseProbeMs: 200 };
    await setMaxMessageBytes(dlq, 16);
    running = await startTestBridge(await env(), fastRetries);
    // The first has no name: TEMPLATE_VARIABLE_MISSING, dead-lettered. The second, with the same key, waits behind it.
    await produce(topic, [
      { key: 'u-1', value: { type: 'SignedUp', email: 'ada@example.com' } },
      { key: 'u-1', value: { type: 'SignedUp', email: 'bob@example.com', name: 'Bob' } },
    ]);
    await waitFor(() => running!.logs.text.split('dead-letter write failed, retrying').length > 3, {
      what: 'the dead-letter write to fail a few times',
    });
    expect(await topicSize(dlq)).toBe(0);
    expect((await committedOffsets(groupId, topic)).get(0) ?? -1).toBeLessThanOrEqual(0);
    expect(simulator.received(AGENTLESS_EMAIL_PATH)).toHaveLength(0);

    // Stopped while the write keeps failing: the ledger says `failed`, and the dead-letter write is still owed.
    await running.bridge.close();
    running = undefined;
    const ledger = await openLedger(ledgerFile);
    try {
      const [record] = await ledger.query({ rule: 'welcome-email' });
      expect(record?.state).toBe('failed');
    } finally {
      await ledger.close();
    }
    expect((await committedOffsets(groupId, topic)).get(0) ?? -1).toBeLessThanOrEqual(0);

    // The topic accepts records again: the restarted bridge writes the owed dead letter, then moves on.
    await setMaxMessageBytes(dlq, 1_000_000);
    running = await startTestBridge(await env(), fastRetries);
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 2, {
      timeoutMs: 30_000,
      what: 'the commit past both events',
    });
    const [dead] = await readTopic(dlq, 1);
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.code]?.toString()).toBe('TEMPLATE_VARIABLE_MISSING');
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.offset]?.toString()).toBe('0');
    expect(dead?.headers?.[DEAD_LETTER_HEADERS.rule]?.toString()).toBe('welcome-email');
    expect(await topicSize(dlq)).toBe(1);
    expect(
      simulator
        .received(AGENTLESS_EMAIL_PATH)
        .map((r) => (r.body as { toAddresses: { email: string }[] }).toAddresses[0]?.email),
    ).toEqual(['bob@example.com']);
    await running.bridge.close();
    running = undefined;
    const after = await openLedger(ledgerFile);
    try {
      const [record] = await after.query({ rule: 'welcome-email', state: 'dead-lettered' });
      expect(record?.offset).toBe('0');
    } finally {
      await after.close();
    }
  });
});
