import { startBridge } from '../bridge.js';
import { loadConfig } from '../config.js';
import { isBridgeError } from '../errors.js';
import { watchHeap } from '../heap.js';
import { createLogger } from '../telemetry/logger.js';
import { startTracing } from '../telemetry/tracing.js';
import { EXIT, toggleDebugOnSignal, untilSignal } from './signals.js';

export const RUN_USAGE = `  run                       Consume the rules' topics and deliver to Genesys Cloud (configured by environment
                            variables: see docs/configuration.md or geb config).`;

/** Long enough for the last log lines to reach a pipe. */
const EXIT_AFTER_FAILED_START_MS = 500;

export async function runCommand(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`geb run: ${(error as Error).message}\n`);
    return EXIT.config;
  }
  const logger = createLogger(config.logLevel);
  toggleDebugOnSignal(logger, config.logLevel);
  const tracing = startTracing();
  let bridge;
  try {
    bridge = await startBridge({ config, logger });
  } catch (error) {
    logger.fatal(
      isBridgeError(error) ? { code: error.code } : { err: error },
      `cannot start: ${(error as Error).message}`,
    );
    await tracing.shutdown();
    const code = isBridgeError(error) && error.disposition === 'fatal' ? EXIT.config : EXIT.failure;
    // What started before the failure (a Redis client, a PostgreSQL pool, keep-alive sockets) would keep a bridge that
    // cannot start alive, silent, forever: it exits once the message is out, whatever is still open.
    setTimeout(() => process.exit(code), EXIT_AFTER_FAILED_START_MS).unref();
    return code;
  }
  const stopWatchingHeap = watchHeap((fields, message) => logger.warn(fields, message));
  // Spans still buffered are flushed after the bridge stopped, so the last deliveries' traces are not lost.
  return untilSignal(
    logger,
    async () => {
      stopWatchingHeap();
      const outcome = await bridge.close();
      await tracing.shutdown();
      return outcome;
    },
    bridge.shutdownBoundMs,
  );
}
