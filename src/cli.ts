#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startBridge } from './bridge.js';
import { loadConfig } from './config.js';
import { isBridgeError } from './errors.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from './simulator/server.js';
import { createLogger, type Logger } from './telemetry/logger.js';

const USAGE = `Usage: geb <command> [options]

Commands:
  run                       Consume the rules' topics and deliver to Genesys Cloud (configured by environment
                            variables: see the README's configuration reference).
  simulator [options]       Run the local Genesys Cloud simulator.
      --port N              Port to listen on (default 8089; 0 picks a free one).
      --host H              Address to bind (default 127.0.0.1).
      --client-id ID        OAuth client id it accepts (default ${DEFAULT_SIMULATOR_CLIENT.id}).
      --client-secret S     OAuth client secret it accepts (default ${DEFAULT_SIMULATOR_CLIENT.secret}).
      --token-lifetime-s N  expires_in of issued tokens (default 86400).
  help                      Show this text.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run();
    case 'simulator':
      return simulator(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 64 : 0;
    default:
      process.stderr.write(`geb: unknown command "${command}"\n\n${USAGE}`);
      return 64;
  }
}

async function run(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`geb run: ${(error as Error).message}\n`);
    return 78;
  }
  const logger = createLogger(config.logLevel);
  let bridge;
  try {
    bridge = await startBridge({ config, logger });
  } catch (error) {
    logger.fatal(
      isBridgeError(error) ? { code: error.code } : { err: error },
      `cannot start: ${(error as Error).message}`,
    );
    return isBridgeError(error) && error.disposition === 'fatal' ? 78 : 1;
  }
  await untilSignal(logger, () => bridge.close());
  return 0;
}

async function simulator(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8089' },
      host: { type: 'string', default: '127.0.0.1' },
      'client-id': { type: 'string', default: DEFAULT_SIMULATOR_CLIENT.id },
      'client-secret': { type: 'string', default: DEFAULT_SIMULATOR_CLIENT.secret },
      'token-lifetime-s': { type: 'string', default: '86400' },
    },
    strict: true,
  });
  const port = Number(values.port);
  const lifetime = Number(values['token-lifetime-s']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`geb simulator: --port "${values.port}" must be a port number\n`);
    return 64;
  }
  if (!Number.isInteger(lifetime) || lifetime < 1) {
    process.stderr.write(
      `geb simulator: --token-lifetime-s "${values['token-lifetime-s']}" must be a positive whole number\n`,
    );
    return 64;
  }
  const logger = createLogger('info');
  const sim = await GenesysSimulator.start({
    port,
    host: values.host,
    clients: [{ id: values['client-id'], secret: values['client-secret'] }],
    tokenLifetimeS: lifetime,
  });
  logger.info({ url: sim.url, clientId: values['client-id'] }, 'Genesys simulator listening');
  await untilSignal(logger, () => sim.close());
  return 0;
}

/** Resolves after the first SIGTERM/SIGINT has run `stop`; a second signal exits at once. */
function untilSignal(logger: Logger, stop: () => Promise<void>): Promise<void> {
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`geb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
