/**
 * Temp folders for tests, each removed when its test file is done (test/support/temp-cleanup.ts, a setup file),
 * also when a test failed. The global teardown then fails the run if anything is left (test/support/global-setup.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

/** A new folder `<tmp>/<prefix>XXXXXX`, removed after the test file. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export function tempDirSync(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes every folder made so far (the setup file calls it after each test file). */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}

/** For a process that is not a test file (the bench): removes what is left when it exits, however it exits. */
export function removeTempDirsOnExit(): void {
  process.once('exit', () => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * For the global setup: gives this test run a temp folder of its own (TMPDIR, which test workers inherit) and returns
 * the teardown check, which removes that folder and throws, naming them, when tests left geb-* or Kafka entries in it.
 * A folder of its own rather than a snapshot of the system temp folder: other runs on the same machine come and go
 * there meanwhile.
 */
export async function isolateTempDir(): Promise<() => Promise<void>> {
  const previous = process.env['TMPDIR'];
  const runDir = await mkdtemp(join(tmpdir(), 'geb-test-run-'));
  process.env['TMPDIR'] = runDir;
  return async () => {
    if (previous === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previous;
    const left = (await readdir(runDir)).filter((name) => /^geb-|kafka/i.test(name));
    await rm(runDir, { recursive: true, force: true });
    if (left.length > 0)
      throw new Error(
        `the tests left ${left.length} temp folder(s) behind (a test must remove what it makes, see test/support/temp.ts): ${left.sort().join(', ')}`,
      );
  };
}
