/**
 * `npm run demo`: the bridge end to end on this machine. Starts a real Kafka broker, a real schema registry
 * (Apicurio Registry), the Genesys simulator (`geb simulator`) and the bridge (`geb run`) as users run them, publishes
 * examples/events.json as plain JSON and one more event in Avro through the registry, prints what happened to each
 * event, then stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { DEFAULT_SIMULATOR_CLIENT } from '../src/simulator/server.js';
import { startApicurio, type ApicurioRegistry } from '../test/support/apicurio-registry.js';
import { freePort, startKafkaBroker, type KafkaBroker } from '../test/support/kafka-broker.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TOPIC = 'shop.orders';
const TIMEOUT_MS = 90_000;
/** The writer schema of the one Avro event, registered under shop.orders-value as a producer's serializer would. */
const ORDER_SHIPPED_AVRO = {
  type: 'record',
  name: 'OrderShipped',
  namespace: 'shop',
  fields: [
    { name: 'type', type: 'string' },
    { name: 'orderId', type: 'string' },
    { name: 'carrier', type: 'string' },
    {
      name: 'customer',
      type: {
        type: 'record',
        name: 'Customer',
        fields: [
          { name: 'email', type: 'string' },
          { name: 'name', type: 'string' },
        ],
      },
    },
  ],
};
const AVRO_EVENT = {
  key: 'order-1005',
  value: {
    type: 'OrderShipped',
    orderId: 'A-1005',
    carrier: 'PostNord',
    customer: { email: 'katherine@example.com', name: 'Katherine Johnson' },
  },
};

interface ExampleEvent {
  key: string;
  value: unknown;
}

const children: ChildProcess[] = [];
let broker: KafkaBroker | undefined;
let registry: ApicurioRegistry | undefined;

function geb(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

async function cleanup(): Promise<void> {
  for (const child of children.reverse()) await stopChild(child);
  await Promise.all([broker?.stop(), registry?.stop()]);
}

type Listener = (record: Record<string, unknown>) => void;

/**
 * One line reader per child, fanned out to listeners. (A second readline on the same stream, once closed, would
 * pause it; the child would then block writing its logs.)
 */
function jsonLines(child: ChildProcess): { on(listener: Listener): void; off(listener: Listener): void } {
  const listeners = new Set<Listener>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const record = parse(line);
    if (record) for (const listener of [...listeners]) listener(record);
  });
  return { on: (l) => listeners.add(l), off: (l) => listeners.delete(l) };
}

/** Resolves with the first JSON log line `predicate` accepts. */
function waitForLine(
  child: ChildProcess,
  lines: ReturnType<typeof jsonLines>,
  predicate: (record: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  return new Promise((resolveLine, reject) => {
    const listener: Listener = (record) => {
      if (predicate(record)) {
        lines.off(listener);
        resolveLine(record);
      }
    };
    lines.on(listener);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before it was ready`)));
  });
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const events = JSON.parse(await readFile(join(ROOT, 'examples', 'events.json'), 'utf8')) as ExampleEvent[];

  console.log('▶ starting a Kafka broker (KRaft) and a schema registry (Apicurio Registry) …');
  const log = (line: string) => console.log(`  ${line}`);
  // Side by side; each kept once up, so that cleanup() stops it even when the other failed to start.
  const [kafkaStart, registryStart] = await Promise.allSettled([
    startKafkaBroker({ log }),
    startApicurio({ log }),
  ]);
  if (kafkaStart.status === 'fulfilled') broker = kafkaStart.value;
  if (registryStart.status === 'fulfilled') registry = registryStart.value;
  if (kafkaStart.status === 'rejected') throw kafkaStart.reason;
  if (registryStart.status === 'rejected') throw registryStart.reason;
  if (!broker || !registry) throw new Error('unreachable: both started');
  console.log(`  Kafka ${broker.brokers}`);
  console.log(`  Apicurio Registry ${registry.version}, Confluent-compatible API ${registry.url}`);
  const kafka = new Kafka({ clientId: 'geb-demo', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  const simPort = await freePort();
  const simulator = geb(['simulator', '--port', String(simPort)], {});
  simulator.stderr?.pipe(process.stderr);
  const { url } = (await waitForLine(
    simulator,
    jsonLines(simulator),
    (r) => r['msg'] === 'Genesys simulator listening',
  )) as { url: string };
  console.log(`▶ Genesys simulator ${url}`);

  const bridge = geb(['run'], {
    KAFKA_BROKERS: broker.brokers,
    KAFKA_GROUP_ID: 'geb-demo',
    KAFKA_START_FROM: 'earliest',
    RULES_FILE: join(ROOT, 'examples', 'rules.yaml'),
    GENESYS_API_URL: url,
    GENESYS_LOGIN_URL: url,
    GENESYS_CLIENT_ID: DEFAULT_SIMULATOR_CLIENT.id,
    GENESYS_CLIENT_SECRET: DEFAULT_SIMULATOR_CLIENT.secret,
    SCHEMA_REGISTRY_URL: registry.url,
    LOG_LEVEL: 'debug',
    ADMIN_PORT: '0', // the demo must not depend on 8080 being free
    OTEL_SDK_DISABLED: 'true',
    // A fresh broker restarts offsets at 0: a ledger kept from an earlier demo would call every event a duplicate.
    LEDGER_URL: join(await mkdtemp(join(tmpdir(), 'geb-demo-')), 'deliveries.jsonl'),
  });
  bridge.stderr?.pipe(process.stderr);
  const bridgeLines = jsonLines(bridge);
  const finished = new Set<string>();
  let sent = 0;
  let deadLettered = 0;
  let unmatched = 0;
  const allDone = new Promise<void>((resolveDone) => {
    bridgeLines.on((r) => {
      const event = r?.['event'] as
        { topic: string; partition: number; offset: string; key?: string } | undefined;
      if (!event) return;
      const format = event.key === AVRO_EVENT.key ? ' (Avro, via the registry)' : '';
      const where = `${event.topic}/${event.partition}/${event.offset} key=${event.key ?? '-'}${format}`;
      if (r['msg'] === 'delivery' && r['outcome'] === 'sent') {
        sent += 1;
        console.log(
          `  ${where} → ${String(r['rule'])}: sent, Genesys conversationId ${String(r['conversationId'])}`,
        );
      } else if (r['msg'] === 'delivery' && r['outcome'] === 'dead-lettered') {
        deadLettered += 1;
        console.log(
          `  ${where} → ${typeof r['rule'] === 'string' ? r['rule'] : '-'}: dead-lettered to ${String(r['deadLetterTopic'])} (${String(r['code'])}: ${String(r['reason'])})`,
        );
      } else if (r['msg'] === 'event matched no rule') {
        unmatched += 1;
        console.log(`  ${where} → matched no rule`);
      } else {
        return;
      }
      finished.add(`${event.topic}/${event.partition}/${event.offset}`);
      if (finished.size === events.length + 1) resolveDone();
    });
  });
  await waitForLine(bridge, bridgeLines, (r) => r['msg'] === 'joined consumer group');
  console.log('▶ bridge joined the consumer group with examples/rules.yaml');

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // As a user's service would: register the writer schema (topic-name strategy), then Confluent-frame the Avro value.
  const schemas = new SchemaRegistry({ host: registry.url });
  const { id } = await schemas.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(ORDER_SHIPPED_AVRO) },
    { subject: `${TOPIC}-value` },
  );
  await producer.send({
    topic: TOPIC,
    messages: [
      ...events.map((e) => ({ key: e.key, value: JSON.stringify(e.value) })),
      { key: AVRO_EVENT.key, value: await schemas.encode(id, AVRO_EVENT.value) },
    ],
  });
  await producer.disconnect();
  console.log(
    `▶ published ${events.length} example events (JSON) and 1 in Avro (schema id ${id} in the registry) to ${TOPIC}; what the bridge did:`,
  );

  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    allDone,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not every event was handled within ${TIMEOUT_MS / 1000} s`)),
        TIMEOUT_MS,
      );
    }),
  ]);
  clearTimeout(timer);
  console.log(
    `✔ ${events.length + 1} events: ${sent} email(s) sent, ${deadLettered} dead-lettered, ${unmatched} matched no rule.`,
  );
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.log('\n▶ interrupted: stopping everything …');
    void cleanup().finally(() => process.exit(130));
  });
}

void main()
  .then(
    () => 0,
    (error: unknown) => {
      console.error(`✖ demo failed: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    },
  )
  .then(async (code) => {
    console.log('▶ stopping the bridge, the simulator, the broker and the registry …');
    await cleanup();
    console.log('▶ done: no process left running.');
    process.exit(code);
  });
