/**
 * AWS event-ruler (the matching library behind EventBridge) as an oracle for the differential test: its jars come
 * from Maven Central through Maven (test/support/event-ruler/pom.xml) into .cache/, MatchOracle.java is compiled
 * beside them with javac, and one JVM answers a whole batch of {pattern, event} cases.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HERE = join(ROOT, 'test', 'support', 'event-ruler');
const POM = join(HERE, 'pom.xml');
const SOURCE = join(HERE, 'MatchOracle.java');

export type OracleAnswer = { match: boolean } | { error: string };

/** The event-ruler version the pom names. */
export async function eventRulerVersion(): Promise<string> {
  const version = /<event-ruler\.version>([^<]+)<\/event-ruler\.version>/.exec(
    await readFile(POM, 'utf8'),
  )?.[1];
  if (!version) throw new Error(`${POM} has no <event-ruler.version>`);
  return version;
}

/** The classpath of the compiled oracle, fetched and compiled once (a marker file per version). */
export async function ensureOracle(): Promise<string> {
  const home = join(ROOT, '.cache', `event-ruler-${await eventRulerVersion()}`);
  const libs = join(home, 'libs');
  const classes = join(home, 'classes');
  const marker = join(home, '.complete');
  const classpath = `${classes}:${libs}/*`;
  const source = await readFile(SOURCE, 'utf8');
  // The marker holds the source it was compiled from, so an edit to MatchOracle.java recompiles.
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === source) return classpath;
  await rm(home, { recursive: true, force: true });
  try {
    await run(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        POM,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${libs}`,
      ],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    await run('javac', ['-nowarn', '-d', classes, '-cp', `${libs}/*`, SOURCE]);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `could not fetch or compile the event-ruler oracle (needs mvn and a JDK on the PATH): ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
  await writeFile(marker, source);
  return classpath;
}

/** event-ruler's answer for each case, in order, from one JVM. */
export async function askEventRuler(
  cases: readonly { pattern: unknown; event: unknown }[],
): Promise<OracleAnswer[]> {
  const classpath = await ensureOracle();
  const java = spawn('java', ['-cp', classpath, 'MatchOracle'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  java.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  java.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((done, fail) => {
    java.on('error', fail);
    java.on('close', done);
  });
  java.stdin.end(cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
  const code = await exited;
  const answers = stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as OracleAnswer);
  if (code !== 0 || answers.length !== cases.length) {
    throw new Error(
      `the event-ruler oracle exited ${String(code)} after ${answers.length}/${cases.length} answers: ${stderr}`,
    );
  }
  return answers;
}
