import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { rulesCommand, type DryRunResult } from '../../src/commands/rules.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { startTestBridge, type InProcessBridge, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { readDocExamples, type DocExample } from '../support/docs-examples.js';
import { committedOffsets, kafka, produce, uniqueName, waitFor } from '../support/kafka.js';
import { tempDir } from '../support/temp.js';

const DOC_TOPIC = 'shop.orders';

/**
 * Runs `geb rules test` through the CLI's own command function, capturing what it prints. (Spawning a process per
 * example costs seconds of CPU each; test/commands/rules.test.ts runs the real executable.)
 */
async function geb(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const [command, ...rest] = args;
    expect(command).toBe('rules');
    const code = await rulesCommand(rest);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
}

/**
 * All topics in one request; leaders are awaited by polling metadata, because kafkajs' own wait gives up on the
 * broker's transient UNKNOWN_TOPIC_OR_PARTITION when the machine is busy.
 */
async function createTopics(topics: string[]): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      waitForLeaders: false,
    });
    await waitFor(
      async () => {
        try {
          const metadata = await admin.fetchTopicMetadata({ topics });
          return metadata.topics.every(
            (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0),
          );
        } catch {
          return false;
        }
      },
      { what: 'the example topics to have leaders' },
    );
  } finally {
    await admin.disconnect();
  }
}

/** Every rule of every example in one file for one bridge: topics made unique, names and template files prefixed. */
function combine(examples: DocExample[], topics: string[]): unknown {
  const rules = examples.flatMap((example, i) => {
    const doc = parse(example.rules) as { rules: Record<string, unknown>[] };
    return doc.rules.map((rule) => {
      const action = JSON.parse(JSON.stringify(rule['action']), (key, value: unknown) =>
        key === 'file' && typeof value === 'string' ? `ex${i}/${value}` : value,
      ) as unknown;
      return { ...rule, name: `ex${i}-${String(rule['name'])}`, topics: [topics[i]], action };
    });
  });
  return { version: 1, rules };
}

describe('every example of docs/rules.md: `geb rules test` prints exactly what the running bridge sends', () => {
  const examples = readDocExamples();
  const topics = examples.map(() => uniqueName('docs'));
  const groupId = uniqueName('geb-docs');
  let dir: string;
  let simulator: GenesysSimulator;
  let running: InProcessBridge;

  beforeAll(async () => {
    dir = await tempDir('geb-docs-');
    for (const [i, example] of examples.entries()) {
      await writeFiles(join(dir, `ex${i}`), {
        ...example.files,
        'rules.yaml': example.rules,
        'event.json': example.event ?? '',
      });
      await writeFiles(
        dir,
        Object.fromEntries(Object.entries(example.files).map(([f, t]) => [`ex${i}/${f}`, t])),
      );
    }
    await writeFile(join(dir, 'rules.yaml'), JSON.stringify(combine(examples, topics), null, 2));
    await createTopics(topics);
    simulator = await GenesysSimulator.start();
    running = await startTestBridge({
      ...kafkaEnv(),
      KAFKA_GROUP_ID: groupId,
      RULES_FILE: join(dir, 'rules.yaml'),
      ...simulatorEnv(simulator),
    });
  });

  afterAll(async () => {
    await running?.bridge.close();
    await simulator?.close();
  });

  it('has examples for every operator and every action', () => {
    const all = examples.map((e) => e.rules).join('\n');
    for (const word of [
      'prefix',
      'suffix',
      'equals-ignore-case',
      'wildcard',
      'anything-but',
      'numeric',
      'cidr',
      'exists',
      '$or',
      '$kafka',
      'agentlessEmail',
      'agentlessMessage',
      'campaignContact',
      'file:',
    ]) {
      expect(all, word).toContain(word);
    }
    expect(examples.every((e) => e.event !== undefined && e.output !== undefined)).toBe(true);
  });

  it('for each example, the dry run, the docs and the bridge agree on the requests', async () => {
    const dryRuns = [];
    for (const [i, example] of examples.entries()) {
      dryRuns.push(
        await geb([
          'rules',
          'test',
          join(dir, `ex${i}`, 'rules.yaml'),
          '--event',
          join(dir, `ex${i}`, 'event.json'),
          '--topic',
          DOC_TOPIC,
          ...(example.key === undefined ? [] : ['--key', example.key]),
          ...Object.entries(example.headers).flatMap(([name, value]) => ['--header', `${name}=${value}`]),
        ]),
      );
    }

    let seen = 0;
    for (const [i, example] of examples.entries()) {
      const where = `docs/rules.md example at line ${example.line}`;
      const run = dryRuns[i];
      expect(run?.code, `${where}: ${run?.stderr}`).toBe(0);
      const printed = JSON.parse(run?.stdout ?? '') as DryRunResult;
      expect(printed, where).toEqual(JSON.parse(example.output ?? ''));
      expect(printed.matches.length, where).toBeGreaterThan(0);

      const topic = topics[i] as string;
      await produce(topic, [
        {
          value: example.event ?? '',
          ...(example.key !== undefined && { key: example.key }),
          headers: example.headers,
        },
      ]);
      await waitFor(async () => (await committedOffsets(groupId, topic)).get(0) === 1, {
        what: `the bridge to finish the event of the ${where}`,
      });
      const sent = simulator.received().filter((r) => r.path !== '/oauth/token');
      const fresh = sent.slice(seen);
      seen = sent.length;
      expect(
        fresh.map((r) => ({ method: r.method, path: r.path, body: r.body, status: r.status })),
        where,
      ).toEqual(printed.matches.map((m) => ({ ...m.request, status: 200 })));
    }
  });
});
