import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BridgeError } from '../../src/errors.js';
import type { EventContext } from '../../src/delivery/attempt.js';
import { FileLedger } from '../../src/delivery/ledger/file-ledger.js';
import { DeliveryGate } from '../../src/delivery/ledger/gate.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../src/delivery/retry-policy.js';
import type { GenesysRequest, GenesysResponse } from '../../src/genesys/client.js';
import type { GenesysSender } from '../../src/genesys/contact-batcher.js';
import { Health } from '../../src/health.js';
import type { DeadLetterReason } from '../../src/kafka/dead-letter.js';
import type { InboundMessage } from '../../src/kafka/message.js';
import { Pipeline, type PipelineDeps } from '../../src/pipeline.js';
import { parseRules } from '../../src/rules/rules-file.js';
import { createLogger, recipientHasher } from '../../src/telemetry/logger.js';
import { LogCapture } from './bridge.js';
import { tempDir } from './temp.js';

/** What the fake sender does on one call: answer, or throw this error. */
export type SendStep = 'ok' | BridgeError;

/** A Genesys sender that plays a script of answers and failures, and keeps what it was asked. */
export class FakeSender implements GenesysSender {
  readonly requests: GenesysRequest[] = [];
  #calls = 0;

  constructor(private readonly script: readonly SendStep[] = ['ok']) {}

  send(request: GenesysRequest): Promise<GenesysResponse> {
    this.requests.push(request);
    const step = this.script[Math.min(this.#calls, this.script.length - 1)] ?? 'ok';
    this.#calls += 1;
    if (step !== 'ok') return Promise.reject(step);
    const correlationId = `corr-${this.#calls}`;
    return Promise.resolve({
      status: 202,
      body: { id: `conv-${this.#calls}`, conversationId: `conv-${this.#calls}` },
      correlationId,
      calls: 1,
      correlationIds: [correlationId],
      waitedMs: 0,
    });
  }
}

/** A dead-letter writer that keeps what it would have written, failing the first `failures` writes. */
export class FakeDeadLetters {
  readonly written: { message: InboundMessage; reason: DeadLetterReason }[] = [];
  attempts = 0;

  constructor(private failures = 0) {}

  write(message: InboundMessage, reason: DeadLetterReason): Promise<string> {
    this.attempts += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      return Promise.reject(new Error('broker away'));
    }
    this.written.push({ message, reason });
    return Promise.resolve(`${message.topic}.dlq`);
  }
}

export const FAST_RETRIES: RetryPolicy = {
  ...DEFAULT_RETRY_POLICY,
  baseDelayMs: 1,
  maxDelayMs: 5,
  pauseProbeMs: 20,
};

export const TOPIC = 'signups';

/** One agentless-email rule on TOPIC for `{ type: Signup }` events; `text` may name a variable the event lacks. */
export function welcomeRules(text = 'Welcome, {{ name }}.') {
  return parseRules(
    `
version: 1
rules:
  - name: welcome
    topics: [${TOPIC}]
    match: { type: [Signup] }
    action:
      agentlessEmail:
        from: { email: hello@shop.example }
        to: { email: "{{ email }}" }
        subject: Welcome
        text: "${text}"
`,
    join(process.cwd(), 'rules.yaml'),
    {},
  );
}

export function signup(offset: number, event: Record<string, unknown> = {}): InboundMessage {
  return {
    topic: TOPIC,
    partition: 0,
    offset: String(offset),
    key: Buffer.from('customer-1'),
    value: Buffer.from(JSON.stringify({ type: 'Signup', email: 'ann@example.com', name: 'Ann', ...event })),
    headers: {},
    timestamp: String(Date.now()),
  };
}

export interface PipelineHarness {
  readonly pipeline: Pipeline;
  readonly sender: FakeSender;
  readonly deadLetters: FakeDeadLetters;
  readonly ledger: FileLedger;
  readonly gate: DeliveryGate;
  readonly health: Health;
  readonly logs: LogCapture;
  /** Prepares and runs one message to its final outcome, as the delivery runner would. */
  deliver(message: InboundMessage): Promise<void>;
  close(): Promise<void>;
}

/** A pipeline over fakes (sender, dead-letter writer) and a real embedded ledger in a temp folder: no broker. */
export async function pipelineHarness(
  options: {
    script?: readonly SendStep[];
    text?: string;
    deadLetterFailures?: number;
    /** Asks "Genesys" about deliveries left in doubt (delivery/in-doubt-resolver.ts). */
    resolver?: PipelineDeps['resolver'];
  } = {},
): Promise<PipelineHarness> {
  const dir = await tempDir('geb-pipeline-');
  const ledger = FileLedger.open(join(dir, 'ledger.jsonl'));
  const gate = new DeliveryGate(ledger, undefined);
  const sender = new FakeSender(options.script);
  const deadLetters = new FakeDeadLetters(options.deadLetterFailures);
  const health = new Health();
  const logs = new LogCapture();
  const rules = welcomeRules(options.text);
  const pipeline = new Pipeline({
    rules: () => rules,
    genesys: sender,
    deadLetters,
    health,
    retryPolicy: FAST_RETRIES,
    recipientHash: recipientHasher(undefined),
    logger: createLogger('debug', logs),
    ledger: gate,
    ...(options.resolver && { resolver: options.resolver }),
  });
  const stop = new AbortController();
  const ctx: EventContext = {
    waitSignal: stop.signal,
    callSignal: stop.signal,
    heartbeat: () => Promise.resolve(),
  };
  return {
    pipeline,
    sender,
    deadLetters,
    ledger,
    gate,
    health,
    logs,
    async deliver(message) {
      const prepared = await pipeline.prepare(message, ctx);
      await prepared.run({ heartbeat: () => Promise.resolve(), waiting: () => {} });
    },
    async close() {
      stop.abort();
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function refused(code: ConstructorParameters<typeof BridgeError>[0], status?: number): BridgeError {
  return new BridgeError(code, `Genesys said no (${code})`, { status, correlationId: 'corr-refused' });
}
