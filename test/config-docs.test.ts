import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { configurationDocs } from '../src/commands/config.js';
import { SETTINGS } from '../src/config.js';

describe('docs/configuration.md', () => {
  it('is the page generated from the settings catalogue', async () => {
    const committed = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const generated = configurationDocs();
    expect(
      committed === generated,
      'docs/configuration.md is out of date with src/config.ts: run `npm run docs:config` and commit the result',
    ).toBe(true);
  });

  it('documents every variable, with its default and, for a secret, its _FILE form', () => {
    const page = configurationDocs();
    for (const s of SETTINGS) {
      const row = page.split('\n').find((line) => line.startsWith(`| \`${s.name}\` |`));
      expect(row, s.name).toBeDefined();
      if (s.default !== undefined) expect(row, s.name).toContain(`\`${s.default}\``);
      if (s.kind === 'secret') expect(row, s.name).toContain(`\`${s.name}_FILE\``);
    }
  });

  it('keeps its tables unpadded, so that they read in a terminal', () => {
    expect(configurationDocs()).not.toMatch(/ {2,}\|/);
  });
});
