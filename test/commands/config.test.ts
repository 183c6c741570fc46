import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { writeRulesFile, simulatorEnv, kafkaEnv } from '../support/bridge.js';
import { createTopic, uniqueName } from '../support/kafka.js';

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
      ...kafkaEnv(),
      RULES_FILE: await writeRulesFile(
        `version: 1\nrules:\n  - name: r\n    topics: [${topic}]\n    action:\n      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ e }}" }, text: x }\n`,
      ),
      ...simulatorEnv(simulator),
    };
  });
  afterAll(() => simulator?.close());

  it('prints each setting by its variable name with its source, every secret redacted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'geb-config-cmd-'));
    try {
      const secretFile = join(dir, 'client-secret');
      await writeFile(secretFile, `${DEFAULT_SIMULATOR_CLIENT.secret}\n`);
      const { GENESYS_CLIENT_SECRET: _, ...rest } = env;
      const { code, stdout } = await geb(['config'], {
        ...rest,
        GENESYS_CLIENT_SECRET_FILE: secretFile,
        KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'bridge',
        KAFKA_SASL_PASSWORD: 'sasl-password-value',
      });
      expect(code).toBe(0);
      const lines = stdout.split('\n');
      expect(lines).toContain(`KAFKA_BROKERS=${env['KAFKA_BROKERS']}  # environment`);
      expect(lines).toContain('KAFKA_GROUP_ID=genesys-event-bridge  # default');
      expect(lines).toContain('GENESYS_CLIENT_SECRET=[redacted]  # file');
      expect(lines).toContain('KAFKA_SASL_PASSWORD=[redacted]  # environment');
      expect(lines).toContain('# REDIS_URL unset');
      expect(lines).toContain('# Kafka security (TLS and SASL)');
      expect(stdout).not.toContain(DEFAULT_SIMULATOR_CLIENT.secret);
      expect(stdout).not.toContain('sasl-password-value');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('masks the user-info of every URL and never prints a private key, even one after "Bag Attributes"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'geb-config-cmd-'));
    try {
      // openssl pkcs12 -nodes writes attribute lines before the PEM block.
      const key =
        'Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n-----BEGIN PRIVATE KEY-----\nMIIEvQ-private-key-body\n-----END PRIVATE KEY-----\n';
      await writeFile(join(dir, 'key.pem'), key);
      await writeFile(
        join(dir, 'cert.pem'),
        'Bag Attributes\n-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n',
      );
      const { code, stdout } = await geb(['config', '--json'], {
        ...env,
        LEDGER_URL: 'postgres://geb:ledger-pw-value@db:5432/geb',
        REDIS_URL: 'rediss://:redis-pw-value@redis:6380/0',
        SCHEMA_REGISTRY_URL: 'https://api-key:registry-pw-value@registry.example/apis/ccompat/v7',
        SCHEMA_REGISTRY_CERT_FILE: join(dir, 'cert.pem'),
        SCHEMA_REGISTRY_KEY_FILE: join(dir, 'key.pem'),
      });
      expect(code).toBe(0);
      const shown = new Map(
        (JSON.parse(stdout) as { name: string; value?: string; source: string }[]).map((s) => [s.name, s]),
      );
      expect(shown.get('LEDGER_URL')).toMatchObject({
        value: 'postgres://***@db:5432/geb',
        source: 'environment',
      });
      expect(shown.get('REDIS_URL')?.value).toBe('rediss://***@redis:6380/0');
      expect(shown.get('SCHEMA_REGISTRY_URL')?.value).toBe('https://***@registry.example/apis/ccompat/v7');
      expect(shown.get('SCHEMA_REGISTRY_KEY_FILE')?.value).toBe(join(dir, 'key.pem'));
      for (const leak of [
        'ledger-pw-value',
        'redis-pw-value',
        'registry-pw-value',
        'api-key',
        'private-key-body',
      ]) {
        expect(stdout).not.toContain(leak);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an empty _FILE secret, naming the variable, without printing anything else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'geb-config-cmd-'));
    try {
      await writeFile(join(dir, 'empty'), '\n');
      const { GENESYS_CLIENT_SECRET: _, ...rest } = env;
      const { code, stdout, stderr } = await geb(['config'], {
        ...rest,
        GENESYS_CLIENT_SECRET_FILE: join(dir, 'empty'),
      });
      expect(code).toBe(78);
      expect(stdout).toBe('');
      expect(stderr).toContain(`GENESYS_CLIENT_SECRET_FILE: "${join(dir, 'empty')}" is empty`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--docs prints the configuration page', async () => {
    const { code, stdout } = await geb(['config', '--docs'], {});
    expect(code).toBe(0);
    expect(stdout).toMatch(/^# Configuration\n/);
    expect(stdout).toContain('| `KAFKA_BROKERS` |');
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
