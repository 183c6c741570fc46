import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';

/**
 * V8 sizes its heap from the machine's memory, not the container's, and collects lazily: under sustained load the
 * bridge's garbage reached 250–280 MB before V8 collected it (docs/benchmarks.md), on a host with GBs free and in a
 * 256 MB container alike. V8 reads its heap flags only when the process starts, so `geb run` sizes the heap once, at
 * start, and runs itself again with the flags (src/cli.ts). docs/operations.md, "Sizing", states the rule.
 */

/** The old generation's share of a container's memory limit: the rest holds the young generation, code, Buffers. */
export const HEAP_SHARE_OF_LIMIT = 0.5;
/** Without a known limit: keeps the bench's bridge under 200 MB RSS (docs/benchmarks.md). */
export const DEFAULT_HEAP_MB = 128;
/** Below this the 10,000-rule index alone leaves no room to work. */
export const MIN_HEAP_MB = 64;
/** Set on the re-executed process (to the size), so it never re-executes again. */
export const REEXEC_MARK = 'GEB_HEAP_SIZED';

export interface HeapInput {
  readonly env: NodeJS.ProcessEnv;
  /** process.execArgv: the Node flags this process was started with. */
  readonly execArgv: readonly string[];
  /** The container's memory limit in bytes, if it has one. */
  readonly memoryLimit: () => number | undefined;
}

/**
 * The old generation's size to start with and where it comes from: GEB_HEAP_MB, else half the container's memory
 * limit, else DEFAULT_HEAP_MB. Undefined: leave V8's own sizing (a size already set by a Node flag or NODE_OPTIONS,
 * GEB_HEAP_MB=0, or this is the re-executed process).
 */
export function heapSize(input: HeapInput): { mb: number; source: string } | undefined {
  const { env } = input;
  if (env[REEXEC_MARK] !== undefined) return undefined;
  const flags = [...input.execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  if (flags.some((flag) => /^--max[-_]old[-_]space[-_]size(=|$)/.test(flag))) return undefined;
  const setting = env['GEB_HEAP_MB']?.trim();
  if (setting !== undefined && setting !== '') {
    const mb = Number(setting);
    if (!Number.isInteger(mb) || mb < 0) {
      throw new Error(
        `GEB_HEAP_MB must be a whole number of MB (0 leaves Node's own heap sizing), not "${setting.slice(0, 40)}"`,
      );
    }
    return mb === 0 ? undefined : { mb: Math.max(mb, MIN_HEAP_MB), source: 'GEB_HEAP_MB' };
  }
  const limit = input.memoryLimit();
  if (limit !== undefined) {
    return {
      mb: Math.max(MIN_HEAP_MB, Math.floor((limit / 2 ** 20) * HEAP_SHARE_OF_LIMIT)),
      source: 'memory limit',
    };
  }
  return { mb: DEFAULT_HEAP_MB, source: 'default' };
}

/**
 * The old generation's cap, and a young generation in proportion (a semi-space of 1/16 of it, 16 MB at most, V8's
 * own maximum): a 128 MB heap with V8's 16 MB semi-spaces spends 48 MB of RSS on short-lived garbage.
 */
export function heapFlags(mb: number): string[] {
  const semi = Math.min(16, Math.max(1, Math.round(mb / 16)));
  return [`--max-old-space-size=${mb}`, `--max-semi-space-size=${semi}`];
}

/** cgroup v2 (`memory.max`), then v1 (`memory.limit_in_bytes`); "max" or a near-2^63 value means no limit. */
export function cgroupMemoryLimit(
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    const bytes = Number(text);
    if (text === 'max' || !Number.isFinite(bytes) || bytes <= 0 || bytes >= 2 ** 60) return undefined;
    return bytes;
  }
  return undefined;
}

/**
 * Runs this same command again with `flags` before the script, stdio inherited, and resolves with its exit code (a
 * child ended by a signal: 128 + its number, as a shell reports it). The child gets a process group of its own, so
 * that a terminal's Ctrl-C reaches it once, through this launcher, like every other signal sent to the launcher.
 */
export function reexecWithFlags(flags: readonly string[], mb: number): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, [REEXEC_MARK]: String(mb) },
  });
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      child.kill(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`geb: could not start node with a sized heap: ${error.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      for (const [name, handler] of handlers) process.off(name, handler);
      resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0));
    });
  });
}

/**
 * In the re-executed process: if the launcher dies without passing a signal on (SIGKILL), stop as on SIGTERM
 * (gracefully) instead of running on with nobody to stop it.
 */
export function watchLauncher(): void {
  if (process.env[REEXEC_MARK] === undefined) return;
  const launcher = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== launcher) {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1_000);
  timer.unref();
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
};

/** Past this share of the heap's cap, live data (the file ledger's index, a large rules file) is near an out-of-memory. */
const HEAP_WARN_SHARE = 0.8;
const HEAP_WATCH_INTERVAL_MS = 30_000;
const HEAP_WARN_EVERY_MS = 10 * 60_000;

/**
 * A capped heap turns growing live data into a crash (and, with the file ledger, a crash at every start): say so in
 * the log well before, with the fix. Returns a function that stops watching.
 */
export function watchHeap(
  warn: (fields: Record<string, unknown>, message: string) => void,
  stats: () => { used_heap_size: number; heap_size_limit: number } = getHeapStatistics,
): () => void {
  let warnedAt = -Infinity;
  const timer = setInterval(() => {
    const { used_heap_size: used, heap_size_limit: limit } = stats();
    if (used < limit * HEAP_WARN_SHARE || Date.now() - warnedAt < HEAP_WARN_EVERY_MS) return;
    warnedAt = Date.now();
    const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
    warn(
      { heapUsedMb: mb(used), heapLimitMb: mb(limit) },
      'the heap is over 80% of its cap: raise GEB_HEAP_MB (or the container memory limit), or move the ledger to PostgreSQL (docs/operations.md, Sizing)',
    );
  }, HEAP_WATCH_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
