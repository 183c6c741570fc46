import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';

/** No Docker engine runs here, so the compose file is checked for what can drift from the code: its settings. */
describe('docker-compose.yml', () => {
  it('configures the bridge only with variables the bridge declares, and runs commands geb has', async () => {
    const compose = parse(await readFile(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; command?: string[] }>;
    };
    const declared = new Set(SETTINGS.map((v) => v.name));
    const bridge = compose.services['bridge'];
    const unknown = Object.keys(bridge?.environment ?? {}).filter(
      (k) => !declared.has(k) && !k.startsWith('OTEL_'),
    );
    expect(unknown).toEqual([]);
    expect(bridge?.command?.[0]).toBe('run');
    expect(compose.services['simulator']?.command?.[0]).toBe('simulator');
    for (const required of SETTINGS.filter((v) => v.required).map((v) => v.name)) {
      const satisfied =
        required in (bridge?.environment ?? {}) ||
        (required === 'GENESYS_CLIENT_SECRET' && 'GENESYS_CLIENT_SECRET_FILE' in (bridge?.environment ?? {}));
      expect(satisfied, required).toBe(true);
    }
  });
});
