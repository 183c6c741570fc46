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
    let code: number = EXIT.unclean;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, boundMs }, 'signal received: shutting down');
      const bound = setTimeout(() => {
        if (code === EXIT.unclean) logger.error({ boundMs }, 'shutdown bound reached: exiting now');
        else logger.warn({ boundMs }, 'stopped, but something kept the process alive: exiting now');
        process.exit(code);
      }, boundMs);
      void stop()
        .then(
          ({ clean }) => (clean ? EXIT.ok : EXIT.unclean),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            return EXIT.unclean;
          },
        )
        .then((exitCode) => {
          code = exitCode;
          // From here the process exits as soon as nothing is left to run; the timer only ends a straggler.
          bound.unref();
          resolve(exitCode);
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * Exit codes, after BSD sysexits where one fits. `unclean` (EX_TEMPFAIL): the stop did not finish within the shutdown
 * bound (or a step of it failed): offsets not committed are redelivered on the next start.
 */
export const EXIT = { ok: 0, failure: 1, usage: 64, software: 70, unclean: 75, config: 78 } as const;
