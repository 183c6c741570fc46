import { parseArgs } from 'node:util';
import { DEFAULT_FAULTS, mergeFaults, type FaultSettings } from '../simulator/faults.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../simulator/server.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT, untilSignal } from './signals.js';

export const SIMULATOR_USAGE = `  simulator [options]       Run the local Genesys Cloud simulator.
      --port N              Port to listen on (default 8089; 0 picks a free one).
      --host H              Address to bind (default 127.0.0.1).
      --client-id ID        OAuth client id it accepts (default ${DEFAULT_SIMULATOR_CLIENT.id}).
      --client-secret S     OAuth client secret it accepts (default ${DEFAULT_SIMULATOR_CLIENT.secret}).
      --token-lifetime-s N  expires_in of issued tokens (default 86400).
    Fault switches (also changeable while running: PUT/PATCH /__simulator/faults with JSON):
      --latency-ms N        delay every answer by N ms (default 0)
      --latency-jitter-ms N plus a random 0..N ms (default 0)
      --failure-rate S=P    answer API calls with status S (408, 429, 500, 502, 503, 504) with probability P;
                            repeatable, e.g. --failure-rate 503=0.2 --failure-rate 429=0.1
      --retry-after-s N     Retry-After of injected 429s (default 1)
      --drop-rate P         destroy the connection of an API call without answering, with probability P
      --hang-rate P         never answer an API call, with probability P
      --token-endpoint-status S  answer every token request with status S (e.g. 503)
      --per-token-limit N   API calls per token per window (default 300; 0: unlimited)
      --org-email-limit N   agentless emails per window for all tokens together (default 300; 0: unlimited)
      --rate-window-ms N    the window of both limits (default 60000)`;

const FAULT_FLAGS: Record<string, keyof FaultSettings> = {
  'latency-ms': 'latencyMs',
  'latency-jitter-ms': 'latencyJitterMs',
  'retry-after-s': 'retryAfterS',
  'drop-rate': 'dropRate',
  'hang-rate': 'hangRate',
  'token-endpoint-status': 'tokenEndpointStatus',
  'per-token-limit': 'perTokenLimit',
  'org-email-limit': 'orgEmailLimit',
  'rate-window-ms': 'rateWindowMs',
};

/** Fault switches from the command line; throws naming what is wrong. */
export function faultsFromFlags(
  values: Record<string, string | string[] | boolean | undefined>,
): FaultSettings {
  const patch: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(FAULT_FLAGS)) {
    const value = values[flag];
    if (typeof value !== 'string') continue;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag} "${value}" must be a number`);
    patch[key] = n;
  }
  const rates = values['failure-rate'];
  if (Array.isArray(rates)) {
    const failureRates: Record<string, number> = {};
    for (const entry of rates) {
      const match = /^(\d{3})=([\d.]+)$/.exec(entry);
      if (!match?.[1] || !match[2]) throw new Error(`--failure-rate "${entry}" must be STATUS=PROBABILITY`);
      failureRates[match[1]] = Number(match[2]);
    }
    patch['failureRates'] = failureRates;
  }
  return mergeFaults(DEFAULT_FAULTS, patch);
}

export async function simulatorCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8089' },
      host: { type: 'string', default: '127.0.0.1' },
      'client-id': { type: 'string', default: DEFAULT_SIMULATOR_CLIENT.id },
      'client-secret': { type: 'string', default: DEFAULT_SIMULATOR_CLIENT.secret },
      'token-lifetime-s': { type: 'string', default: '86400' },
      ...Object.fromEntries(Object.keys(FAULT_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
      'failure-rate': { type: 'string', multiple: true },
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
  let faults: FaultSettings;
  try {
    faults = faultsFromFlags(values);
  } catch (error) {
    process.stderr.write(`geb simulator: ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  const logger = createLogger('info');
  const sim = await GenesysSimulator.start({
    port,
    host: values.host,
    clients: [{ id: values['client-id'], secret: values['client-secret'] }],
    tokenLifetimeS: lifetime,
    faults,
  });
  logger.info({ url: sim.url, clientId: values['client-id'], faults }, 'Genesys simulator listening');
  return untilSignal(logger, () => sim.close().then(() => ({ clean: true })), SIMULATOR_STOP_BOUND_MS);
}

/** The simulator holds no state worth waiting for: it stops within this or exits anyway. */
const SIMULATOR_STOP_BOUND_MS = 5_000;
