import { rename, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import {
  startTestBridge,
  writeRulesFile,
  type InProcessBridge,
  simulatorEnv,
  kafkaEnv,
} from '../support/bridge.js';
import { committedOffsets, createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';

function rules(topic: string, version: string): string {
  return `version: 1
rules:
  - name: ping-email
    topics: [${topic}]
    match: { type: [Ping] }
    action:
      agentlessEmail:
        from: { email: ops@shop.example }
        to: { email: ops@shop.example }
        subject: "${version} {{ n }}"
        text: "ping {{ n }}"
`;
}

describe('hot reload of the rules file while events flow (real broker, simulator)', () => {
  const topic = uniqueName('reload');
  const groupId = uniqueName('geb-reload');
  let file: string;
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  /** Replaces the file the way editors and config management do: write aside, then rename over it. */
  async function replace(text: string) {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  }

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    file = await writeRulesFile(rules(topic, 'v1'));
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: file,
      RULES_WATCH_INTERVAL_MS: '50',
      ...simulatorEnv(simulator),
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('swaps in a valid file, keeps the old rules on an invalid one, and loses no event', async () => {
    let n = 0;
    const send = async (count: number) => {
      const batch = Array.from({ length: count }, () => ({ key: 'k', value: { type: 'Ping', n: n++ } }));
      await produce(topic, batch);
    };
    const logged = (msg: string) => running.logs.records().filter((r) => r['msg'] === msg);
    const subjects = () =>
      simulator.received(AGENTLESS_EMAIL_PATH).map((r) => (r.body as { subject: string }).subject);

    await send(5);
    await waitFor(() => subjects().length >= 3, { what: 'the first emails' });

    // A valid replacement, picked up by the file watcher while events keep coming.
    const flowing = (async () => {
      for (let i = 0; i < 6; i++) await send(3);
    })();
    await replace(rules(topic, 'v2'));
    await waitFor(() => logged('rules reloaded').length === 1, { what: 'the valid file to be reloaded' });
    await flowing;
    await send(3);
    await waitFor(() => subjects().some((s) => s.startsWith('v2 ')), { what: 'an email from the new rules' });

    // An invalid replacement (an unknown key): rejected with its position, and v2 keeps running.
    const invalid = rules(topic, 'v3').replace('subject:', 'sbject:');
    const more = (async () => {
      for (let i = 0; i < 4; i++) await send(3);
    })();
    await replace(invalid);
    await waitFor(
      () =>
        logged('rules reload rejected: the new rules file is invalid; the previous rules keep running')
          .length >= 1,
      {
        what: 'the invalid file to be rejected',
      },
    );
    // SIGHUP asks for the same reload: rejected again, for the same reason.
    process.kill(process.pid, 'SIGHUP');
    await waitFor(
      () =>
        logged('rules reload rejected: the new rules file is invalid; the previous rules keep running')
          .length >= 2,
      {
        what: 'the SIGHUP reload to be rejected',
      },
    );
    await more;
    await send(3);

    const total = n;
    await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === total, {
      what: `all ${total} events to be committed`,
    });
    const got = subjects();
    // Nothing lost, nothing sent twice.
    expect(got.map((s) => Number(s.split(' ')[1])).sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => i),
    );
    // One partition, in order: v1 then v2, never v3, and never back to v1 after the first v2.
    const versions = got.map((s) => s.split(' ')[0]);
    const firstV2 = versions.indexOf('v2');
    expect(firstV2).toBeGreaterThan(0);
    expect(versions.slice(0, firstV2).every((v) => v === 'v1')).toBe(true);
    expect(versions.slice(firstV2).every((v) => v === 'v2')).toBe(true);
    const rejected = logged(
      'rules reload rejected: the new rules file is invalid; the previous rules keep running',
    );
    expect(rejected[0]?.['problems']).toEqual([
      `${file}:10:9: rules[0].action.agentlessEmail.sbject: unknown key "sbject"; did you mean "subject"? (rule "ping-email")`,
    ]);
    const reloads = await running.bridge.metrics.rulesReloads.get();
    const count = (outcome: string) =>
      reloads.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;
    expect(count('applied')).toBeGreaterThanOrEqual(1);
    expect(count('rejected')).toBe(rejected.length);
  });
});
