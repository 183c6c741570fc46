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

/** Exit codes, after BSD sysexits where one fits. */
export const EXIT = { ok: 0, failure: 1, usage: 64, software: 70, config: 78 } as const;
