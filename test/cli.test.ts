import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('geb --version', () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src', 'cli.ts'),
      '--version',
    ]);
    expect(stdout).toBe(`${version}\n`);
  });
});
