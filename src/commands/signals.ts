import type { Logger } from '../telemetry/logger.js';

/** Resolves after the first SIGTERM/SIGINT has run `stop`; a second signal exits at once. */
export function untilSignal(logger: Logger, stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'signal received: shutting down');
      stop().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * SIGUSR2 switches the log level of a running bridge between the configured one and `debug` (or, when `debug` or
 * `trace` is configured, `info`), so that "event matched no rule" and the other debug lines can be seen without a
 * restart. Every child logger follows: none sets a level of its own. The change is logged at warn. Returns a function
 * that stops listening.
 */
export function toggleDebugOnSignal(logger: Logger, configured: string): () => void {
  const other = configured === 'debug' || configured === 'trace' ? 'info' : 'debug';
  const onSignal = () => {
    const from = logger.level;
    const to = from === configured ? other : configured;
    const note = () =>
      logger.warn({ signal: 'SIGUSR2', from, to }, `log level changed from ${from} to ${to}`);
    // Logged at whichever of the two levels lets a warning through, so the change is seen both ways.
    const warnedBefore = logger.isLevelEnabled('warn');
    if (warnedBefore) note();
    logger.level = to;
    if (!warnedBefore && logger.isLevelEnabled('warn')) note();
  };
  process.on('SIGUSR2', onSignal);
  return () => process.off('SIGUSR2', onSignal);
}

/** Exit codes, after BSD sysexits where one fits. */
export const EXIT = { ok: 0, failure: 1, usage: 64, software: 70, config: 78 } as const;
