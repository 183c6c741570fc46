/**
 * A real schema registry for tests and the demo: Apicurio Registry, whose Confluent-compatible API
 * (`/apis/ccompat/v7`) is what the bridge and @kafkajs/confluent-schema-registry talk to. Its ready-to-run
 * distribution comes from Maven Central through Maven (test/support/apicurio/pom.xml), unpacked once into .cache/.
 * Storage is the default in-memory H2: every start is an empty registry.
 *
 * The pinned version needs Java 21 or later. It is looked for in APICURIO_JAVA_HOME, JAVA_HOME, the PATH and the
 * usual JDK folders; without one, the last release that runs on Java 17 is used instead, and the log says so.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findMaven, freePort } from './kafka-broker.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const POM = join(ROOT, 'test', 'support', 'apicurio', 'pom.xml');
const CACHE = join(ROOT, '.cache');
const JDK_FOLDERS = ['/usr/lib/jvm', '/opt/java', '/Library/Java/JavaVirtualMachines'];

type Log = (line: string) => void;

export interface ApicurioRegistry {
  /** The Confluent-compatible base URL, for SCHEMA_REGISTRY_URL: `http://127.0.0.1:PORT/apis/ccompat/v7`. */
  readonly url: string;
  readonly version: string;
  /** The registry's own log, for a failing test to print. */
  readonly logFile: string;
  stop(): Promise<void>;
}

async function pomProperty(name: string): Promise<string> {
  const pom = await readFile(POM, 'utf8');
  const value = new RegExp(`<${name.replace(/\./g, '\\.')}>([^<]+)</`).exec(pom)?.[1];
  if (!value) throw new Error(`${POM} has no <${name}>`);
  return value;
}

/** The major version of a `java` binary, or 0 when it does not run. */
async function javaMajor(java: string): Promise<number> {
  try {
    const { stderr } = await run(java, ['-version']);
    const version = /version "(\d+)(?:\.(\d+))?/.exec(stderr);
    if (!version) return 0;
    // Java 8 and older call themselves 1.x.
    return version[1] === '1' ? Number(version[2]) : Number(version[1]);
  } catch {
    return 0;
  }
}

/** The newest Java among the candidates, with its major version; APICURIO_JAVA_HOME alone when it is set. */
export async function findJava(): Promise<{ java: string; major: number; searched: string }> {
  const explicit = process.env['APICURIO_JAVA_HOME'];
  if (explicit) {
    const java = join(explicit, 'bin', 'java');
    return { java, major: await javaMajor(java), searched: `APICURIO_JAVA_HOME (${explicit})` };
  }
  const candidates = new Set<string>();
  if (process.env['JAVA_HOME']) candidates.add(join(process.env['JAVA_HOME'], 'bin', 'java'));
  candidates.add('java');
  for (const folder of JDK_FOLDERS) {
    const entries = await readdir(folder).catch(() => [] as string[]);
    for (const entry of entries) {
      for (const home of [join(folder, entry), join(folder, entry, 'Contents', 'Home')]) {
        if (existsSync(join(home, 'bin', 'java'))) candidates.add(join(home, 'bin', 'java'));
      }
    }
  }
  let best = { java: 'java', major: 0 };
  const majors = await Promise.all(
    [...candidates].map(async (java) => ({ java, major: await javaMajor(java) })),
  );
  for (const found of majors) if (found.major > best.major) best = found;
  return { ...best, searched: `JAVA_HOME, the PATH and ${JDK_FOLDERS.join(', ')}` };
}

/** The unpacked distribution of `version`, fetched once. */
async function ensureApicurio(version: string, fallback: boolean, log: Log): Promise<string> {
  const dir = join(CACHE, `apicurio-${version}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  const mvn = await findMaven(log);
  log(`fetching Apicurio Registry ${version} from Maven Central into ${dir} …`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const artifact = `-Dartifact=io.apicurio:apicurio-registry-app:${version}:tar.gz:all`;
  const tarball = `${dir}.tar.gz`;
  try {
    if (fallback) {
      // 3.0.9's parent POM is not on Maven Central, and the 3.x plugin insists on reading it: the old `get` (run
      // where there is no pom.xml) fetches the file alone, and copies it to `dest`.
      await run(
        mvn,
        [
          '-q',
          '-B',
          'org.apache.maven.plugins:maven-dependency-plugin:2.8:get',
          artifact,
          '-Dtransitive=false',
          `-Ddest=${tarball}`,
        ],
        { cwd: dir, maxBuffer: 16 * 1024 * 1024 },
      );
      await run('tar', ['-xzf', tarball, '-C', dir]);
    } else {
      await run(
        mvn,
        // The .complete marker decides what is fetched, not the plugin's own markers (overWriteReleases).
        [
          '-q',
          '-B',
          '-f',
          POM,
          'dependency:unpack',
          artifact,
          `-DoutputDirectory=${dir}`,
          '-Dmdep.overWriteReleases=true',
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
    }
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `Maven could not fetch Apicurio Registry ${version}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  } finally {
    await rm(tarball, { force: true });
  }
  await runnableJar(dir);
  await writeFile(marker, new Date().toISOString());
  return dir;
}

/** 3.1 and later ship Quarkus's fast-jar (quarkus-run.jar); 3.0 an uber `-runner.jar`. */
async function runnableJar(dir: string): Promise<string> {
  if (existsSync(join(dir, 'quarkus-run.jar'))) return join(dir, 'quarkus-run.jar');
  const runner = (await readdir(dir)).find((name) => name.endsWith('-runner.jar'));
  if (!runner) throw new Error(`${dir} holds neither quarkus-run.jar nor a *-runner.jar`);
  return join(dir, runner);
}

/** Starts an empty Apicurio Registry on free loopback ports; resolves once /health/ready answers 200. */
export async function startApicurio(options: { log?: Log } = {}): Promise<ApicurioRegistry> {
  const log = options.log ?? (() => {});
  const found = await findJava();
  let version = await pomProperty('apicurio.version');
  const fallback = found.major < 21;
  if (fallback) {
    const older = await pomProperty('apicurio.java17.version');
    if (found.major < 17) {
      throw new Error(
        `Apicurio Registry ${version} needs Java 21 or later (${older} needs 17); none found in ${found.searched}. ` +
          'Install a JDK 21+ or set APICURIO_JAVA_HOME to one.',
      );
    }
    log(
      `no Java 21 or later in ${found.searched} (the best is Java ${found.major}): running Apicurio Registry ` +
        `${older} instead of ${version}; set APICURIO_JAVA_HOME to a JDK 21+ to test against ${version}`,
    );
    version = older;
  }
  const jar = await runnableJar(await ensureApicurio(version, fallback, log));
  const dir = await mkdtemp(join(tmpdir(), 'geb-apicurio-'));
  const [port, managementPort] = [await freePort(), await freePort()];
  const jvm = [
    '-Xmx128m',
    '-XX:+UseSerialGC',
    // C1 only: the registry answers a handful of requests per test run; full JIT would cost start-up time.
    '-XX:TieredStopAtLevel=1',
    '-Dquarkus.http.host=127.0.0.1',
    `-Dquarkus.http.port=${port}`,
    // Without these the management interface (health, metrics) opens a second listener on a fixed 0.0.0.0:9000.
    '-Dquarkus.management.host=127.0.0.1',
    `-Dquarkus.management.port=${managementPort}`,
    '-Dapicurio.storage.kind=sql',
    '-Dapicurio.storage.sql.kind=h2',
    // Java ignores TMPDIR: without these, Vert.x's cache, Netty's native libraries and the JVM's perf data land in
    // /tmp and outlive the run (a killed JVM never removes them). In `dir`, they go when the registry stops.
    `-Djava.io.tmpdir=${dir}`,
    `-Dvertx.cacheDirBase=${join(dir, 'vertx-cache')}`,
    '-XX:-UsePerfData',
    '-jar',
    jar,
  ];
  const logFile = join(dir, 'apicurio.log');
  const output = await open(logFile, 'w');
  // As for the Kafka broker: the wrapper shell kills java when our process is gone, however we died.
  const watchdog = [
    '"$@" &',
    'child=$!',
    "trap 'kill -KILL $child 2>/dev/null; exit 0' TERM INT",
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done`,
    'kill -KILL $child 2>/dev/null',
  ].join('\n');
  const child: ChildProcess = spawn('sh', ['-c', watchdog, 'apicurio-watchdog', found.java, ...jvm], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', output.fd, output.fd],
  });
  await output.close();
  child.unref();
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killGroup);
  const stop = async () => {
    process.removeListener('exit', killGroup);
    killGroup();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // 3.0 serves health on the main port; 3.1 and later on the management port.
    const health = [
      `http://127.0.0.1:${managementPort}/health/ready`,
      `http://127.0.0.1:${port}/health/ready`,
    ];
    const ready = async () => {
      if (exited) throw new Error(`Apicurio Registry exited during start-up:\n${await tail(logFile)}`);
      const answers = await Promise.all(
        health.map((url) =>
          fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
            (r) => r.ok,
            () => false,
          ),
        ),
      );
      return answers.some(Boolean);
    };
    await waitFor(ready, {
      timeoutMs: 120_000,
      intervalMs: 250,
      what: 'Apicurio Registry to be ready',
    }).catch(async (error: Error) => {
      throw new Error(`${error.message}:\n${await tail(logFile)}`);
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}/apis/ccompat/v7`, version, logFile, stop };
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-30).join('\n');
}
