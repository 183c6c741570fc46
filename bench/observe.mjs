// Preloaded into a bridge run by the bench (`node --import ./bench/observe.mjs`): measures the event-loop delay and
// the GC pauses of the process, from when the bench says the measured span starts (so start-up is not counted) to
// its exit, and writes them as JSON to BENCH_OBSERVE_FILE. Plain JavaScript: the bridge runs from dist/ without a
// TypeScript loader, and the observer must not add one.
import { existsSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';

const file = process.env.BENCH_OBSERVE_FILE;
if (file) {
  // The histogram holds the time between the monitor's timer turns: the delay is what exceeds its resolution.
  const RESOLUTION_MS = 1;
  const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let gcs = [];
  let cpuAtStart = process.cpuUsage();
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcs.push(entry.duration);
  });
  gc.observe({ entryTypes: ['gc'] });
  loop.enable();
  // The bench creates `<file>.start` when the measured span starts (signals are taken: SIGUSR2 toggles the log level).
  const started = setInterval(() => {
    if (!existsSync(`${file}.start`)) return;
    clearInterval(started);
    loop.reset();
    gcs = [];
    cpuAtStart = process.cpuUsage();
  }, 20);
  started.unref();
  const ms = (ns) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
  process.on('exit', () => {
    const sorted = [...gcs].sort((a, b) => a - b);
    // `geb run` re-executes itself with a sized heap, and both processes load this file: the bridge exits first and
    // writes; its launcher, exiting after it, finds the file there ('wx') and leaves it.
    try {
      writeFileSync(
        file,
        JSON.stringify({
          cpuMs: Math.round((process.cpuUsage(cpuAtStart).user + process.cpuUsage(cpuAtStart).system) / 1000),
          loopDelayP50Ms: ms(loop.percentile(50)),
          loopDelayP99Ms: ms(loop.percentile(99)),
          loopDelayMaxMs: ms(loop.max),
          gcCount: sorted.length,
          gcTotalMs: Math.round(sorted.reduce((a, b) => a + b, 0)),
          gcP99Ms: Math.round((sorted[Math.floor(sorted.length * 0.99)] ?? 0) * 100) / 100,
          gcMaxMs: Math.round((sorted.at(-1) ?? 0) * 100) / 100,
        }),
        { flag: 'wx' },
      );
    } catch {
      // the launcher: the bridge wrote it already
    }
  });
}
