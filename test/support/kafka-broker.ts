/**
 * A real Apache Kafka broker (KRaft, single node) for tests, the demo and the benchmarks, with nothing but Java:
 * the jars come from Maven Central through Maven (test/support/kafka/pom.xml), cached in .cache/ and reused.
 * If `mvn` is not on the PATH, a Maven distribution is itself fetched from Maven Central into .cache/ first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { waitFor } from './wait.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const POM = join(ROOT, 'test', 'support', 'kafka', 'pom.xml');
const CACHE = join(ROOT, '.cache');
const MAVEN_VERSION = '3.9.9';
const MAVEN_CENTRAL = 'https://repo.maven.apache.org/maven2';

export interface KafkaBroker {
  /** `host:port`, for KAFKA_BROKERS. */
  readonly brokers: string;
  /** `host:port` of each extra listener, by name. */
  readonly listeners: Readonly<Record<string, string>>;
  /** The broker's own log, for a failing test to print. */
  readonly logFile: string;
  /** Kills the broker (SIGKILL, as a crash or a lost machine would) and resolves once its port refuses connections. */
  halt(): Promise<void>;
  /** Starts a halted broker again on the same ports and log directory; resolves once it serves metadata. */
  restart(): Promise<void>;
  /** Kills the broker and removes its log directory. */
  stop(): Promise<void>;
}

type Log = (line: string) => void;

/** The broker version under test: KAFKA_VERSION (e.g. 4.1.1), or the pom's <kafka.version> (3.9.2). */
export async function kafkaVersion(): Promise<string> {
  const chosen = process.env['KAFKA_VERSION'];
  if (chosen) {
    if (!/^\d+\.\d+\.\d+$/.test(chosen))
      throw new Error(`KAFKA_VERSION "${chosen}" is not a version like 4.1.1`);
    return chosen;
  }
  const pom = await readFile(POM, 'utf8');
  const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
  if (!version) throw new Error(`${POM} has no <kafka.version>`);
  return version;
}

/** The classpath folder of the broker's jars, fetched once. */
export async function ensureKafkaJars(log: Log = () => {}): Promise<string> {
  const version = await kafkaVersion();
  const libs = join(CACHE, `kafka-${version}`, 'libs');
  const marker = join(libs, '.complete');
  if (existsSync(marker)) return libs;
  const mvn = await findMaven(log);
  log(`fetching the Kafka broker jars from Maven Central into ${libs} …`);
  await rm(libs, { recursive: true, force: true });
  try {
    await run(
      mvn,
      [
        '-q',
        '-B',
        '-f',
        POM,
        'dependency:copy-dependencies',
        `-Dkafka.version=${version}`,
        `-Dkafka.major=${majorOf(version)}`,
        '-DincludeScope=runtime',
        `-DoutputDirectory=${libs}`,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`Maven could not fetch the Kafka jars: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  await writeFile(marker, new Date().toISOString());
  return libs;
}

/** `mvn` from the PATH, or a Maven distribution fetched from Maven Central (checksum verified) into .cache/. */
export async function findMaven(log: Log): Promise<string> {
  try {
    await run('mvn', ['--version']);
    return 'mvn';
  } catch {
    // not installed: fetch it below
  }
  const home = join(CACHE, `apache-maven-${MAVEN_VERSION}`);
  const bin = join(home, 'bin', 'mvn');
  if (existsSync(bin)) return bin;
  const url = `${MAVEN_CENTRAL}/org/apache/maven/apache-maven/${MAVEN_VERSION}/apache-maven-${MAVEN_VERSION}-bin.tar.gz`;
  log(`mvn is not on the PATH: fetching Maven ${MAVEN_VERSION} from Maven Central …`);
  const [archive, checksum] = await Promise.all([download(url), download(`${url}.sha512`)]);
  const expected = checksum.toString('utf8').trim().split(/\s+/)[0];
  const actual = createHash('sha512').update(archive).digest('hex');
  if (actual !== expected) throw new Error(`Maven download ${url} failed its SHA-512 check`);
  await mkdir(CACHE, { recursive: true });
  const tarball = join(CACHE, `apache-maven-${MAVEN_VERSION}-bin.tar.gz`);
  await writeFile(tarball, archive);
  await run('tar', ['-xzf', tarball, '-C', CACHE]);
  await rm(tarball);
  return bin;
}

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface StartOptions {
  readonly log?: Log;
  /** Extra server.properties lines (SASL and TLS settings, say). */
  readonly extraProperties?: Readonly<Record<string, string>>;
  /** Extra listeners, each on its own free port: e.g. `{ name: 'SASL_PLAINTEXT', protocol: 'SASL_PLAINTEXT' }`. */
  readonly extraListeners?: readonly { name: string; protocol: string }[];
  /** Extra arguments of `kafka-storage format`, e.g. `['--add-scram', 'SCRAM-SHA-256=[name=u,password=p]']`. */
  readonly formatArgs?: readonly string[];
}

/** Formats a fresh KRaft log directory and starts a broker on free loopback ports; resolves once it serves metadata. */
export async function startKafkaBroker(options: StartOptions = {}): Promise<KafkaBroker> {
  const log = options.log ?? (() => {});
  const libs = await ensureKafkaJars(log);
  const dir = await mkdtemp(join(tmpdir(), 'geb-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const extra: Record<string, string> = {};
  for (const listener of options.extraListeners ?? []) extra[listener.name] = `127.0.0.1:${await freePort()}`;
  const extraListeners = Object.entries(extra).map(([name, address]) => `${name}://${address}`);
  const properties: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: [
      `PLAINTEXT://127.0.0.1:${port}`,
      `CONTROLLER://127.0.0.1:${controllerPort}`,
      ...extraListeners,
    ].join(','),
    'advertised.listeners': [`PLAINTEXT://127.0.0.1:${port}`, ...extraListeners].join(','),
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': [
      'PLAINTEXT:PLAINTEXT',
      'CONTROLLER:PLAINTEXT',
      ...(options.extraListeners ?? []).map((l) => `${l.name}:${l.protocol}`),
    ].join(','),
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(dir, 'data'),
    'num.partitions': '1',
    'auto.create.topics.enable': 'true',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '3',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    // Lets tests that SIGKILL a bridge use a short session timeout, so the group notices within seconds.
    'group.min.session.timeout.ms': '1000',
    'log.flush.interval.messages': '100000',
    ...options.extraProperties,
  };
  const config = join(dir, 'server.properties');
  await writeFile(
    config,
    Object.entries(properties)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  const logFile = join(dir, 'broker.log');
  const log4j = join(dir, 'log4j.properties');
  await writeFile(
    log4j,
    [
      'log4j.rootLogger=INFO, file',
      'log4j.appender.file=org.apache.log4j.FileAppender',
      `log4j.appender.file.File=${logFile}`,
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka=INFO',
      'log4j.logger.org.apache.kafka=WARN',
      'log4j.logger.state.change.logger=WARN',
    ].join('\n') + '\n',
  );
  const logging = await kafka4Logging(await kafkaVersion(), dir, logFile);
  const java = process.env['JAVA_HOME'] ? join(process.env['JAVA_HOME'], 'bin', 'java') : 'java';
  const classpath = join(libs, '*');
  const jvm = [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseSerialGC',
    // KAFKA_GC_LOG=file: the broker's GC pauses, with wall-clock times, to tell a broker pause from a client's.
    ...(process.env['KAFKA_GC_LOG'] ? [`-Xlog:gc:file=${process.env['KAFKA_GC_LOG']}:time`] : []),
    // Java ignores TMPDIR, and a killed JVM leaves its perf data file in /tmp: keep both inside the broker's folder.
    `-Djava.io.tmpdir=${dir}`,
    '-XX:-UsePerfData',
    logging ?? `-Dlog4j.configuration=file:${log4j}`,
    '-cp',
    classpath,
  ];

  const format = [
    'kafka.tools.StorageTool',
    'format',
    // `=` keeps a random id that starts with '-' from being read as an option.
    `--cluster-id=${clusterId()}`,
    '-c',
    config,
    ...(options.formatArgs ?? []),
  ];
  await run(java, [...jvm, ...format]).catch((error: Error) => {
    throw new Error(`formatting the KRaft log directory failed (is Java 17+ installed?): ${error.message}`);
  });

  const brokers = `127.0.0.1:${port}`;
  // The wrapper shell keeps the broker from outliving us: it kills java when our process is gone, however we died.
  const watchdog = [
    '"$@" &',
    'child=$!',
    "trap 'kill -KILL $child 2>/dev/null; exit 0' TERM INT",
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done`,
    'kill -KILL $child 2>/dev/null',
  ].join('\n');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const killGroup = () => {
    try {
      if (child?.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  // A test process that dies without its teardown still leaves neither a broker nor its log directory behind.
  const onExit = () => {
    killGroup();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const launch = async () => {
    const started: ChildProcess = spawn(
      'sh',
      ['-c', watchdog, 'kafka-watchdog', java, ...jvm, 'kafka.Kafka', config],
      { detached: true, stdio: ['ignore', 'ignore', 'ignore'] },
    );
    child = started;
    started.unref();
    let gone = false;
    exited = new Promise((resolveExit) =>
      started.once('exit', () => {
        gone = true;
        resolveExit();
      }),
    );
    await waitUntilServing(brokers, () => gone, logFile);
  };
  const halt = async () => {
    killGroup();
    await exited;
    await waitUntilRefused(port);
  };
  const stop = async () => {
    process.removeListener('exit', onExit);
    killGroup();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (error) {
    await stop();
    throw error;
  }
  return { brokers, listeners: extra, logFile, halt, restart: launch, stop };
}

/** Resolves once nothing accepts connections on the port (a killed JVM's sockets close with the process). */
async function waitUntilRefused(port: number): Promise<void> {
  const refused = () =>
    new Promise<boolean>((resolveProbe) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolveProbe(false);
      });
      socket.once('error', () => resolveProbe(true));
    });
  await waitFor(refused, {
    timeoutMs: 30_000,
    what: `port ${port} to refuse connections after the broker was killed`,
  });
}

function majorOf(version: string): number {
  return Number(version.split('.')[0]);
}

/** Kafka 4 logs through Log4j 2, which reads its own file format: the JVM flag naming it, or undefined before 4. */
async function kafka4Logging(version: string, dir: string, logFile: string): Promise<string | undefined> {
  if (majorOf(version) < 4) return undefined;
  const file = join(dir, 'log4j2.properties');
  await writeFile(
    file,
    [
      'appender.file.type=File',
      'appender.file.name=file',
      `appender.file.fileName=${logFile}`,
      'appender.file.layout.type=PatternLayout',
      'appender.file.layout.pattern=[%d] %p %m (%c)%n',
      'rootLogger.level=INFO',
      'rootLogger.appenderRef.file.ref=file',
      'logger.apache.name=org.apache.kafka',
      'logger.apache.level=WARN',
      'logger.state.name=state.change.logger',
      'logger.state.level=WARN',
    ].join('\n') + '\n',
  );
  return `-Dlog4j2.configurationFile=${file}`;
}

/** A random 16-byte cluster id in Kafka's base64url form (it may start with "-": pass it as --cluster-id=ID). */
function clusterId(): string {
  return Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
}

async function waitUntilServing(brokers: string, exited: () => boolean, logFile: string): Promise<void> {
  const admin = new Kafka({
    clientId: 'geb-harness',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).admin();
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited()) throw new Error(`the Kafka broker exited during start-up; see ${logFile}`);
    try {
      await admin.connect();
      await admin.describeCluster();
      await admin.disconnect();
      return;
    } catch {
      await admin.disconnect().catch(() => {});
      if (Date.now() > deadline)
        throw new Error(`the Kafka broker did not come up within 90 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
