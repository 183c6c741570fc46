import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { writeRulesFile, simulatorEnv } from '../support/bridge.js';
import { brokers, createTopic, uniqueName } from '../support/kafka.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function geb(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('geb config', () => {
  const topic = uniqueName('config.orders');
  let simulator: GenesysSimulator;
  let env: Record<string, string>;

  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
    await createTopic(topic);
    env = {
      KAFKA_BROKERS: brokers().join(','),
      RULES_FILE: await writeRulesFile(
        `version: 1\nrules:\n  - name: r\n    topics: [${topic}]\n    action:\n      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ e }}" }, text: x }\n`,
      ),
      ...simulatorEnv(simulator),
    };
  });
  afterAll(() => simulator?.close());

  it('prints the effective configuration with every secret redacted', async () => {
    const { code, stdout } = await geb(['config'], {
      ...env,
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'bridge',
      KAFKA_SASL_PASSWORD: 'sasl-password-value',
    });
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as {
      genesys: { clientSecret: string; clientId: string };
      kafka: { security: { sasl: { password: string; mechanism: string } } };
    };
    expect(printed.genesys.clientId).toBe(DEFAULT_SIMULATOR_CLIENT.id);
    expect(printed.genesys.clientSecret).toBe('[redacted]');
    expect(printed.kafka.security.sasl).toMatchObject({ mechanism: 'scram-sha-512', password: '[redacted]' });
    expect(stdout).not.toContain(DEFAULT_SIMULATOR_CLIENT.secret);
    expect(stdout).not.toContain('sasl-password-value');
  });

  it('--check passes one line per check when everything is reachable', async () => {
    const { code, stdout } = await geb(['config', '--check'], env);
    expect(stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^✔ rules file .*: 1 rule\(s\) on 1 topic\(s\)$/),
      expect.stringMatching(/^✔ Kafka .*\(PLAINTEXT\): connected$/),
      '✔ Kafka topics of the rules exist (1)',
      `✔ Genesys token endpoint ${simulator.url}/oauth/token: OAuth client accepted`,
    ]);
    expect(code).toBe(0);
  });

  it('--check names each problem on its own line and fails', async () => {
    const { code, stdout } = await geb(['config', '--check'], {
      ...env,
      GENESYS_CLIENT_SECRET: 'wrong-secret-value',
      RULES_FILE: await writeRulesFile(
        `version: 1\nrules:\n  - name: r\n    topics: [no.such.topic.${Date.now()}]\n    action:\n      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ e }}" }, text: x }\n`,
      ),
    });
    expect(code).toBe(78);
    expect(stdout).toMatch(/^✖ Kafka topics missing: no\.such\.topic\./m);
    expect(stdout).toMatch(/^✖ Genesys token endpoint: GENESYS_INVALID_CLIENT: /m);
    expect(stdout).not.toContain('wrong-secret-value');
  });
});
