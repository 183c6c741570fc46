import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { tempLedgerFile, writeRulesFile, kafkaEnv } from '../support/bridge.js';
import { freePort } from '../support/kafka-broker.js';
import { createTopic, produce, uniqueName, waitFor } from '../support/kafka.js';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPAN_KIND = { client: 3, consumer: 5 } as const;

describe('one trace per delivery, from the producer to Genesys (the built bridge as a child process)', () => {
  const topic = uniqueName('shop.orders');
  const client = { id: 'trace-client', secret: `s3cret-${randomBytes(8).toString('hex')}` };
  const recipient = `ada.${randomBytes(4).toString('hex')}@example.com`;
  const traceId = randomBytes(16).toString('hex');
  const producerSpanId = randomBytes(8).toString('hex');
  let simulator: GenesysSimulator;
  let receiver: OtlpReceiver;
  let output = '';
  let metricsText = '';
  let spans: ReceivedSpan[] = [];

  beforeAll(async () => {
    // Users run the compiled entry point: build it as they would.
    await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
    simulator = await GenesysSimulator.start({ clients: [client] });
    receiver = new OtlpReceiver();
    await receiver.start();
    await createTopic(topic);
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: traced-email
    topics: [${topic}]
    match: { type: [OrderShipped] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        subject: "Order {{ orderId }}"
        text: "Shipped."
`);
    const adminPort = await freePort();
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'run'], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...kafkaEnv(),
        KAFKA_GROUP_ID: uniqueName('geb'),
        KAFKA_START_FROM: 'earliest',
        RULES_FILE: rulesFile,
        GENESYS_API_URL: simulator.url,
        GENESYS_LOGIN_URL: simulator.url,
        GENESYS_CLIENT_ID: client.id,
        GENESYS_CLIENT_SECRET: client.secret,
        ADMIN_PORT: String(adminPort),
        LEDGER_URL: tempLedgerFile(),
        LOG_LEVEL: 'debug',
        OTEL_SERVICE_NAME: 'geb-trace-test',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const exited = new Promise((r) => child.once('exit', r));

    await produce(topic, [
      {
        key: 'order-42',
        value: { type: 'OrderShipped', orderId: 'A-42', customer: { email: recipient } },
        headers: { traceparent: `00-${traceId}-${producerSpanId}-01` },
      },
    ]);
    await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length === 1, {
      what: 'the email at the simulator',
    });
    await waitFor(() => output.includes('"msg":"delivery"'), { what: 'the delivery log line' });
    metricsText = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    child.kill('SIGTERM');
    await exited;
    spans = receiver.spans.filter((s) => s.traceId === traceId);
  });

  afterAll(async () => {
    await simulator?.close();
    await receiver?.close();
  });

  it('continues the producer trace through consume, delivery and the Genesys HTTP call', () => {
    const consume = spans.find((s) => s.kind === SPAN_KIND.consumer);
    expect(consume, `spans received: ${JSON.stringify(receiver.spans.map((s) => s.name))}`).toBeDefined();
    expect(consume?.parentSpanId).toBe(producerSpanId);
    expect(consume?.serviceName).toBe('geb-trace-test');
    expect(consume?.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.destination.name': topic,
      'messaging.operation.type': 'process',
      'messaging.kafka.offset': 0,
    });

    const delivery = spans.find((s) => s.name === 'deliver traced-email');
    expect(delivery?.parentSpanId).toBe(consume?.spanId);
    expect(delivery?.attributes).toMatchObject({ 'geb.rule': 'traced-email', 'geb.outcome': 'sent' });

    const [received] = simulator.received(AGENTLESS_EMAIL_PATH);
    const http = spans.find((s) => s.kind === SPAN_KIND.client && s.name === `POST ${AGENTLESS_EMAIL_PATH}`);
    expect(http?.parentSpanId).toBe(delivery?.spanId);
    expect(http?.attributes).toMatchObject({
      'http.response.status_code': 200,
      'genesys.correlation_id': received?.correlationId,
      'genesys.conversation.id': (received?.response as { conversationId: string }).conversationId,
      'geb.attempt': 1,
    });
    // The context went on to Genesys: the call carried a traceparent of the same trace.
    expect(received?.traceparent).toMatch(new RegExp(`^00-${traceId}-${http?.spanId}-`));

    expect(spans.map((s) => s.name)).toEqual(expect.arrayContaining(['decode', 'match']));
    // The token was fetched at start-up, before any event: its span is a trace of its own.
    expect(receiver.spans.find((s) => s.name === 'POST /oauth/token')?.attributes).toMatchObject({
      'http.response.status_code': 200,
    });
  });

  it('puts no address and no secret in any span or log line, and logs carry the trace id', () => {
    const exported = receiver.rawBodies.join('\n');
    expect(exported).not.toContain(recipient);
    expect(exported).not.toContain(client.secret);
    expect(output).not.toContain(recipient);
    expect(output).not.toContain(client.secret);
    const deliveryLine = output.split('\n').find((l) => l.includes('"msg":"delivery"'));
    expect(JSON.parse(deliveryLine ?? '{}')).toMatchObject({ trace_id: traceId, outcome: 'sent' });
  });

  it('/metrics counts the delivery under its rule and outcome', () => {
    const families = parsePrometheusTextFormat(metricsText);
    const deliveries = families.find((f) => f.name === 'geb_deliveries_total');
    expect(deliveries?.type).toBe('COUNTER');
    const sample = deliveries?.metrics.find(
      (m) => m.labels?.['rule'] === 'traced-email' && m.labels['outcome'] === 'sent',
    );
    expect(sample?.value).toBe('1');
    const latency = families.find((f) => f.name === 'geb_delivery_latency_seconds');
    // (this parser keeps a histogram's buckets but not its labels)
    expect(latency?.metrics[0]?.buckets?.['+Inf']).toBe('1');
    expect(families.find((f) => f.name === 'geb_events_consumed_total')?.metrics[0]?.value).toBe('1');
  });
});
