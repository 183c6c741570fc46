import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GenesysSimulator } from '../src/simulator/server.js';
import { simulatorEnv, writeEmailRule } from './support/bridge.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('geb --version', () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src', 'cli.ts'),
      '--version',
    ]);
    expect(stdout).toBe(`${version}\n`);
  });
});

describe('geb run: heap sizing at start', () => {
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string; stdout: string }>((done) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'run'],
        { env: { PATH: process.env['PATH'] ?? '', ...env } },
        (error, stdout, stderr) => done({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
    });

  it('refuses a GEB_HEAP_MB that is not a number of MB', async () => {
    const { code, stderr } = await run({ GEB_HEAP_MB: '1g' });
    expect(code).toBe(78);
    expect(stderr).toContain('GEB_HEAP_MB must be a whole number of MB');
  });

  it("passes the sized bridge's exit code and output through unchanged", async () => {
    // No KAFKA_BROKERS: the re-executed bridge reports its configuration error and exits 78, once.
    const sized = await run({ GEB_HEAP_MB: '96' });
    const direct = await run({ GEB_HEAP_MB: '0' });
    expect(sized.code).toBe(direct.code);
    expect(sized.code).not.toBe(0);
    expect(sized.stdout + sized.stderr).toContain('KAFKA_BROKERS');
    expect((sized.stdout + sized.stderr).split('KAFKA_BROKERS').length).toBe(
      (direct.stdout + direct.stderr).split('KAFKA_BROKERS').length,
    );
  });
});

describe('geb run: a bridge that cannot start exits', () => {
  it('with its reason and a failure code, although a Redis client was already connected', async () => {
    const simulator = await GenesysSimulator.start();
    try {
      const rules = await writeEmailRule({
        name: 'shipped',
        topic: 'shop.orders',
        to: '{{ email }}',
        text: 'hi',
      });
      const started = Date.now();
      const result = await new Promise<{ code: number | null; stdout: string }>((done) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'run'],
          {
            env: {
              PATH: process.env['PATH'] ?? '',
              GEB_HEAP_MB: '0',
              KAFKA_BROKERS: '127.0.0.1:9',
              RULES_FILE: rules,
              ...simulatorEnv(simulator),
              // Connected before the ledger is opened; the ledger then cannot be (its folder would be inside a file).
              REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
              LEDGER_URL: join(rules, 'deliveries.jsonl'),
              ADMIN_PORT: '0',
              OTEL_SDK_DISABLED: 'true',
            },
            // Before the fix the process never ended: the open Redis connection kept it alive.
            timeout: 45_000,
          },
          (error, stdout) => done({ code: error ? ((error.code as number | null) ?? null) : 0, stdout }),
        );
      });
      expect(result.stdout).toContain('shared rate budgets: Redis connected');
      expect(result.stdout).toContain('cannot start');
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      // Bounded by the exit after a failed start (500 ms), not by the 45 s timeout that kills a hung process.
      expect(Date.now() - started).toBeLessThan(40_000);
    } finally {
      await simulator.close();
    }
  });
});
