import type { Logger } from '../telemetry/logger.js';

/**
 * Resolves with the exit code once the first SIGTERM/SIGINT has run `stop`: 0 when the stop was clean, EXIT.unclean
 * when it was not. A second signal exits at once (130). However the stop goes, the process exits `boundMs` after the
 * first signal at the latest: a client left behind (kafkajs reconnecting to a broker that is gone) must not keep a
 * stopped bridge alive.
 */
export function untilSignal(
  logger: Logger,
  stop: () => Promise<{ readonly clean: boolean }>,
  boundMs: number,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, boundMs }, 'signal received: shutting down');
      const deadline = Date.now() + boundMs;
      const bound = setTimeout(() => {
        logger.error({ boundMs }, 'shutdown bound reached: exiting now');
        process.exit(EXIT.unclean);
      }, boundMs);
      void stop()
        .then(
          ({ clean }) => (clean ? EXIT.ok : EXIT.unclean),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            return EXIT.unclean;
          },
        )
        .then((code) => {
          clearTimeout(bound);
          // The process ends once nothing is left to run; a kafkajs restart already under way when the stop began
          // (its connection retries) is not waited for.
          setTimeout(
            () => {
              logger.debug('stopped; exiting without waiting for what kafkajs still retries');
              process.exit(code);
            },
            Math.max(0, Math.min(LINGER_MS, deadline - Date.now())),
          ).unref();
          resolve(code);
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

/** After a stop, how long the process may take to end on its own before it is ended. */
const LINGER_MS = 1_000;

/**
 * Exit codes, after BSD sysexits where one fits. `unclean` (EX_TEMPFAIL): the stop did not finish within the shutdown
 * bound (or a step of it failed): offsets not committed are redelivered on the next start.
 */
export const EXIT = { ok: 0, failure: 1, usage: 64, software: 70, unclean: 75, config: 78 } as const;
