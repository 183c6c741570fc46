import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_HEAP_MB, cgroupMemoryLimit, heapFlags, heapSize, watchHeap } from '../src/heap.js';
import { tempDir } from './support/temp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MB = 2 ** 20;

describe('heap sizing', () => {
  const size = (env: NodeJS.ProcessEnv, limit?: number, execArgv: string[] = []) =>
    heapSize({ env, execArgv, memoryLimit: () => limit });

  it('takes GEB_HEAP_MB, else half the container limit, else the default; never over a size already set', () => {
    expect(size({ GEB_HEAP_MB: '300' }, 512 * MB)).toEqual({ mb: 300, source: 'GEB_HEAP_MB' });
    expect(size({}, 512 * MB)).toEqual({ mb: 256, source: 'memory limit' });
    expect(size({}, 96 * MB)?.mb).toBe(64);
    expect(size({})).toEqual({ mb: DEFAULT_HEAP_MB, source: 'default' });
    expect(size({ GEB_HEAP_MB: '0' }, 512 * MB)).toBeUndefined();
    expect(size({}, 512 * MB, ['--max-old-space-size=1000'])).toBeUndefined();
    expect(size({ NODE_OPTIONS: '--enable-source-maps --max_old_space_size=900' })).toBeUndefined();
    expect(size({ GEB_HEAP_SIZED: '128' })).toBeUndefined();
    expect(() => size({ GEB_HEAP_MB: '128m' })).toThrow(/GEB_HEAP_MB must be a whole number of MB.*"128m"/);
  });

  it('gives the young generation a share in proportion', () => {
    expect(heapFlags(128)).toEqual(['--max-old-space-size=128', '--max-semi-space-size=8']);
    expect(heapFlags(2048)).toEqual(['--max-old-space-size=2048', '--max-semi-space-size=16']);
  });

  it('reads the cgroup v2 limit, then v1; "max" and the v1 no-limit value are no limit', () => {
    const files = (map: Record<string, string>) => (path: string) => {
      const text = map[path];
      if (text === undefined) throw new Error('ENOENT');
      return text;
    };
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '268435456\n' }))).toBe(256 * MB);
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '536870912' }))).toBe(
      512 * MB,
    );
    expect(
      cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })),
    ).toBeUndefined();
    expect(cgroupMemoryLimit(files({}))).toBeUndefined();
  });
});

describe('the heap-sizing launcher', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A script that re-executes itself the way src/cli.ts does, and reports what its second life got. */
  async function launch() {
    dir = await tempDir('geb-heap-');
    const script = join(dir, 'fixture.mjs');
    await writeFile(
      script,
      `import v8 from 'node:v8';
import { REEXEC_MARK, heapFlags, reexecWithFlags, watchLauncher } from ${JSON.stringify(join(ROOT, 'src', 'heap.ts'))};
if (process.env[REEXEC_MARK] === undefined) {
  process.exitCode = await reexecWithFlags(heapFlags(80), 80);
} else {
  watchLauncher();
  process.on('SIGTERM', () => {
    process.stdout.write('got SIGTERM\\n');
    setTimeout(() => process.exit(42), 50);
  });
  process.on('SIGINT', () => process.stdout.write('got SIGINT\\n'));
  const limit = v8.getHeapStatistics().heap_size_limit;
  process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, limit }) + '\\n');
  setInterval(() => {}, 1000);
}
`,
    );
    const launcher = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    launcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
    await until(() => out.includes('\n'), 30_000);
    const child = JSON.parse(out.split('\n')[0] ?? '{}') as {
      pid: number;
      execArgv: string[];
      limit: number;
    };
    return { launcher, child, exited, out: () => out };
  }

  it('runs the process again with the heap flags, forwards signals once and passes the exit code through', async () => {
    const { launcher, child, exited, out } = await launch();
    expect(child.pid).not.toBe(launcher.pid);
    expect(child.execArgv).toEqual(
      expect.arrayContaining(['--max-old-space-size=80', '--max-semi-space-size=5']),
    );
    expect(child.limit).toBeLessThan(200 * MB);
    launcher.kill('SIGINT');
    await until(() => out().includes('got SIGINT'), 10_000);
    launcher.kill('SIGTERM');
    expect(await exited).toBe(42);
    expect(out().match(/got SIGTERM/g)).toHaveLength(1);
    expect(out().match(/got SIGINT/g)).toHaveLength(1);
  });

  it('stops the re-executed process when the launcher is killed outright', async () => {
    const { launcher, child, exited } = await launch();
    launcher.kill('SIGKILL');
    await exited;
    await until(() => !alive(child.pid), 15_000);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the heap watch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('warns, with the fix, when live data passes 80% of the cap, and then at most every 10 minutes', () => {
    vi.useFakeTimers();
    let used = 50;
    const warnings: string[] = [];
    const stop = watchHeap(
      (_fields, message) => warnings.push(message),
      () => ({ used_heap_size: used * 2 ** 20, heap_size_limit: 100 * 2 ** 20 }),
    );
    vi.advanceTimersByTime(60_000);
    expect(warnings).toEqual([]);
    used = 90;
    vi.advanceTimersByTime(30_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('GEB_HEAP_MB');
    vi.advanceTimersByTime(5 * 60_000);
    expect(warnings).toHaveLength(1);
    vi.advanceTimersByTime(6 * 60_000);
    expect(warnings).toHaveLength(2);
    stop();
    vi.advanceTimersByTime(60 * 60_000);
    expect(warnings).toHaveLength(2);
  });
});
