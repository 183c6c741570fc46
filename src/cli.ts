#!/usr/bin/env node
/**
 * The `geb` entry. For `geb run` it first sizes V8's heap (src/heap.ts): when no size is set yet, it runs itself once
 * more under `node --max-old-space-size=…` and passes signals, stdio and the exit code through. Only node: modules
 * are loaded before that decision, so the launcher stays small; the commands load in the process that runs them.
 */
import { cgroupMemoryLimit, heapFlags, heapSize, reexecWithFlags, watchLauncher } from './heap.js';

let sized: ReturnType<typeof heapSize>;
try {
  sized =
    process.argv[2] === 'run'
      ? heapSize({ env: process.env, execArgv: process.execArgv, memoryLimit: () => cgroupMemoryLimit() })
      : undefined;
} catch (error) {
  process.stderr.write(`geb: ${(error as Error).message}\n`);
  // EXIT.config (src/commands/signals.ts), not imported here to keep the launcher small.
  process.exit(78);
}
if (sized) {
  process.exitCode = await reexecWithFlags(heapFlags(sized.mb), sized.mb);
} else {
  watchLauncher();
  await import('./geb.js');
}
