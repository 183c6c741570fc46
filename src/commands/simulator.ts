import { parseArgs } from 'node:util';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../simulator/server.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT, untilSignal } from './signals.js';

export const SIMULATOR_USAGE = `  simulator [options]       Run the local Genesys Cloud simulator.
      --port N              Port to listen on (default 8089; 0 picks a free one).
      --host H              Address to bind (default 127.0.0.1).
      --client-id ID        OAuth client id it accepts (default ${DEFAULT_SIMULATOR_CLIENT.id}).
      --client-secret S     OAuth client secret it accepts (default ${DEFAULT_SIMULATOR_CLIENT.secret}).
      --token-lifetime-s N  expires_in of issued tokens (default 86400).`;

export async function simulatorCommand(args: string[]): Promise<number> {
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
    return EXIT.usage;
  }
  if (!Number.isInteger(lifetime) || lifetime < 1) {
    process.stderr.write(
      `geb simulator: --token-lifetime-s "${values['token-lifetime-s']}" must be a positive whole number\n`,
    );
    return EXIT.usage;
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
  return EXIT.ok;
}
