#!/usr/bin/env node
// Runs before `npm test` and `npm run demo` (npm's pre-scripts) so that both work on a fresh clone with only Node
// and Java installed: checks the runtimes and installs the npm dependencies when package-lock.json changed.
// Plain Node with no dependencies, since it runs before any are installed. The Kafka jars are fetched by the
// broker harness itself (test/support/kafka-broker.ts), on first use.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fail = (message) => {
  console.error(`\nbootstrap: ${message}\n`);
  process.exit(1);
};

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node >= 20.19 is needed; this is ${process.version}.`);

const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
const javaVersion = spawnSync(java, ['-version'], { encoding: 'utf8' });
if (javaVersion.error || javaVersion.status !== 0) {
  fail('Java 17 or newer is needed to run the local Kafka broker (set JAVA_HOME or put java on the PATH).');
}
const javaMajor = Number(/version "(\d+)/.exec(javaVersion.stderr)?.[1] ?? 0);
if (javaMajor < 17)
  fail(`Java 17 or newer is needed to run the local Kafka broker; found Java ${javaMajor}.`);

const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.geb-lock-sha256');
const wanted = createHash('sha256').update(readFileSync(lock)).digest('hex');
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (have !== wanted) {
  console.log('bootstrap: installing npm dependencies (npm ci) …');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  try {
    execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
  } catch {
    fail('npm ci failed (see above).');
  }
  writeFileSync(stamp, `${wanted}\n`);
}
