import { DEFAULT_SIMULATOR_CLIENT } from '../../src/simulator/server.js';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startBridge, type Bridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { brokers } from './kafka.js';
import { tempDir, tempDirSync } from './temp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Genesys' real budgets (300 calls a minute) would make every test that sends a few hundred events slow; tests of
 * the rate limiter set their own.
 */
const UNLIMITED_RATES = { GENESYS_CLIENT_RATE_LIMIT: '1000000', GENESYS_EMAIL_ORG_RATE_LIMIT: '1000000' };

/**
 * The simulator's fault switches that lift Genesys' own budgets (300 a minute), for tests that send more: without
 * them such a test stalls at 300 calls, with 429s, as Genesys would.
 */
export const UNLIMITED_GENESYS_FAULTS = { perTokenLimit: 1_000_000, orgEmailLimit: 1_000_000 } as const;

/** KAFKA_BROKERS for a bridge under test: the harness's broker (or the one KAFKA_BROKERS named for the run). */
export function kafkaEnv(): { KAFKA_BROKERS: string } {
  return { KAFKA_BROKERS: brokers().join(',') };
}

/**
 * The GENESYS_* variables that point a bridge at a simulator, with one of its clients (its default one if none).
 * GENESYS_ALLOWED_HOSTS lets rules-file connections name simulators too (any port of the simulator's host).
 */
export function simulatorEnv(
  simulator: { readonly url: string },
  client: { readonly id: string; readonly secret: string } = DEFAULT_SIMULATOR_CLIENT,
): Record<string, string> {
  return {
    GENESYS_API_URL: simulator.url,
    GENESYS_LOGIN_URL: simulator.url,
    GENESYS_CLIENT_ID: client.id,
    GENESYS_CLIENT_SECRET: client.secret,
    GENESYS_ALLOWED_HOSTS: new URL(simulator.url).hostname,
  };
}

export async function writeRulesFile(yaml: string): Promise<string> {
  const dir = await tempDir('geb-rules-');
  const file = join(dir, 'rules.yaml');
  await writeFile(file, yaml);
  return file;
}

/** The one agentless-email rule most integration tests need: `to`, `subject` and `text` are Liquid templates. */
export interface EmailRule {
  readonly name: string;
  readonly topic: string;
  readonly to: string;
  readonly text: string;
  readonly subject?: string;
  /** An inline pattern, e.g. `{ type: [OrderShipped] }`; absent: every event of the topic. */
  readonly match?: string;
}

/** Writes a rules file with one agentless-email rule from orders@shop.example (see writeRulesFile). */
export function writeEmailRule(rule: EmailRule): Promise<string> {
  return writeRulesFile(`
version: 1
rules:
  - name: ${rule.name}
    topics: [${rule.topic}]
${rule.match === undefined ? '' : `    match: ${rule.match}\n`}    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "${rule.to}" }
${rule.subject === undefined ? '' : `        subject: "${rule.subject}"\n`}        text: "${rule.text}"
`);
}

/** A ledger file of its own for each bridge a test starts, unless the test names one (LEDGER_URL). */
export function tempLedgerFile(): string {
  return join(tempDirSync('geb-ledger-'), 'deliveries.jsonl');
}

/** Captures the JSON log lines a bridge writes. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface InProcessBridge {
  readonly bridge: Bridge;
  readonly logs: LogCapture;
}

/** Starts a bridge in this process, configured through the same environment variables users set. */
export async function startTestBridge(
  env: Record<string, string>,
  retryPolicy?: RetryPolicy,
): Promise<InProcessBridge> {
  const config = loadConfig({
    KAFKA_START_FROM: 'earliest',
    LOG_LEVEL: 'debug',
    ADMIN_PORT: '0',
    LEDGER_URL: tempLedgerFile(),
    ...UNLIMITED_RATES,
    ...env,
  });
  const logs = new LogCapture();
  const bridge = await startBridge({
    config,
    logger: createLogger(config.logLevel, logs),
    shutdownGraceMs: 2_000,
    ...(retryPolicy && { retryPolicy }),
    onCrash: (error) => {
      throw error;
    },
  });
  return { bridge, logs };
}

export interface ChildBridge {
  readonly output: () => string;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `geb run` as users run it: a separate process from the CLI entry point. */
export function spawnBridge(env: Record<string, string>): ChildBridge {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'run'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      KAFKA_START_FROM: 'earliest',
      ADMIN_PORT: '0',
      OTEL_SDK_DISABLED: 'true',
      LEDGER_URL: tempLedgerFile(),
      // The bridge itself, not the heap-sizing launcher (src/heap.ts) in front of it: a SIGKILL here is a crash.
      GEB_HEAP_MB: '0',
      ...UNLIMITED_RATES,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return {
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
