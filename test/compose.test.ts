import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';
import { GenesysSimulator } from '../src/simulator/server.js';

interface Service {
  environment?: Record<string, string>;
  command?: string[];
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition: string }>;
}

async function compose(): Promise<Record<string, Service>> {
  const file = parse(await readFile(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as {
    services: Record<string, Service>;
  };
  return file.services;
}

/** No Docker engine runs here, so the compose file is checked for what can drift from the code. */
describe('docker-compose.yml', () => {
  let simulator: GenesysSimulator;
  beforeAll(async () => {
    simulator = await GenesysSimulator.start();
  });
  afterAll(() => simulator?.close());

  it('configures the bridge only with variables the bridge declares, and runs commands geb has', async () => {
    const services = await compose();
    const declared = new Set(SETTINGS.map((v) => v.name));
    const bridge = services['bridge'];
    const unknown = Object.keys(bridge?.environment ?? {}).filter(
      (k) => !declared.has(k) && !k.startsWith('OTEL_'),
    );
    expect(unknown).toEqual([]);
    expect(bridge?.command?.[0]).toBe('run');
    expect(services['simulator']?.command?.[0]).toBe('simulator');
    for (const required of SETTINGS.filter((v) => v.required).map((v) => v.name)) {
      const satisfied =
        required in (bridge?.environment ?? {}) || `${required}_FILE` in (bridge?.environment ?? {});
      expect(satisfied, required).toBe(true);
    }
  });

  it('gives the simulator a health check of its own, on its port and a path it answers, and the bridge waits for it', async () => {
    const services = await compose();
    const sim = services['simulator'];
    const port = sim?.command?.[sim.command.indexOf('--port') + 1];
    const script = sim?.healthcheck?.test?.at(-1) ?? '';
    const url = /fetch\('([^']+)'\)/.exec(script)?.[1];
    expect(url, 'the health check fetches a URL').toBeDefined();
    const probe = new URL(url ?? '');
    expect(probe.port).toBe(port);
    // The same script, pointed at a running simulator, must exit 0.
    const response = await fetch(new URL(probe.pathname, simulator.url));
    expect(response.status).toBe(200);
    expect(services['bridge']?.depends_on?.['simulator']?.condition).toBe('service_healthy');
  });
});
