import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from '../src/delivery/retry-policy.js';
import type { GenesysSender } from '../src/genesys/contact-batcher.js';
import { Health } from '../src/health.js';
import { DeadLetterWriter, DEAD_LETTER_HEADERS } from '../src/kafka/dead-letter.js';
import type { InboundMessage } from '../src/kafka/message.js';
import { Pipeline, type EventContext, type PipelineDeps } from '../src/pipeline.js';
import type { Rule, RuleSet } from '../src/rules/rule-set.js';
import { createLogger, recipientHasher } from '../src/telemetry/logger.js';
import { LogCapture } from './support/bridge.js';
import { createTopic, kafka, readTopic, uniqueName } from './support/kafka.js';
import { TOPIC, pipelineHarness, refused, signup, type PipelineHarness } from './support/pipeline-fakes.js';

const stop = new AbortController();
const ctx: EventContext = {
  waitSignal: stop.signal,
  callSignal: stop.signal,
  heartbeat: () => Promise.resolve(),
};

describe('Pipeline.prepare', () => {
  const topic = uniqueName('prepare');
  const writer = new DeadLetterWriter(kafka(), '{topic}.dlq');

  beforeAll(async () => {
    await createTopic(topic);
    await writer.connect();
  });
  afterAll(() => writer.disconnect());

  it('dead-letters an event whose matching throws unexpectedly, with EVENT_PREPARE_FAILED and no event data', async () => {
    const logs = new LogCapture();
    // The seam: the rule set the pipeline reads on every event. A defect that only this event's data triggers.
    const rules = {
      rules: [],
      match: () => {
        throw new TypeError('Cannot read properties of secret@example.com');
      },
    } as unknown as RuleSet;
    const pipeline = new Pipeline({
      rules: () => rules,
      genesys: {} as GenesysSender,
      deadLetters: writer,
      health: new Health(),
      retryPolicy: DEFAULT_RETRY_POLICY,
      recipientHash: recipientHasher(undefined),
      // The fake rule set has no rules for the prefilter to read: every event goes on to `match`.
      prefilter: false,
      logger: createLogger('debug', logs),
    });
    const message: InboundMessage = {
      topic,
      partition: 0,
      offset: '7',
      key: Buffer.from('k'),
      value: Buffer.from(JSON.stringify({ email: 'secret@example.com' })),
      headers: {},
      timestamp: String(Date.now()),
    };
    const prepared = await pipeline.prepare(message, ctx);
    expect(prepared.settled).toBe(false);
    await prepared.run({ heartbeat: () => Promise.resolve(), waiting: () => {} });

    const [record] = await readTopic(`${topic}.dlq`, 1);
    const header = (name: string) => record?.headers?.[name]?.toString();
    expect(header(DEAD_LETTER_HEADERS.code)).toBe('EVENT_PREPARE_FAILED');
    expect(header(DEAD_LETTER_HEADERS.stage)).toBe('match');
    expect(header(DEAD_LETTER_HEADERS.message)).toContain('unexpected TypeError');
    expect(header(DEAD_LETTER_HEADERS.message)).not.toContain('secret@example.com');
    expect(logs.text).toContain('EVENT_PREPARE_FAILED');
    expect(logs.text).not.toContain('secret@example.com');
  });

  it('dead-letters an event whose rendering throws unexpectedly, for that rule, instead of stopping', async () => {
    const logs = new LogCapture();
    const rule = {
      name: 'broken-render',
      delivery: 'at-most-once',
      action: {
        kind: 'agentlessEmail',
        render: () => {
          throw new RangeError('Maximum call stack size exceeded');
        },
      },
    } as unknown as Rule;
    const pipeline = new Pipeline({
      rules: () => ({ rules: [rule], match: () => [rule] }) as unknown as RuleSet,
      genesys: {} as GenesysSender,
      deadLetters: writer,
      health: new Health(),
      retryPolicy: DEFAULT_RETRY_POLICY,
      recipientHash: recipientHasher(undefined),
      // The fake rule set has no rules for the prefilter to read: every event goes on to `match`.
      prefilter: false,
      logger: createLogger('debug', logs),
    });
    const prepared = await pipeline.prepare(
      {
        topic,
        partition: 0,
        offset: '8',
        key: null,
        value: Buffer.from('{}'),
        headers: {},
        timestamp: String(Date.now()),
      },
      ctx,
    );
    await prepared.run({ heartbeat: () => Promise.resolve(), waiting: () => {} });
    const records = await readTopic(`${topic}.dlq`, 2);
    const record = records.find((r) => r.headers?.[DEAD_LETTER_HEADERS.offset]?.toString() === '8');
    const header = (name: string) => record?.headers?.[name]?.toString();
    expect(header(DEAD_LETTER_HEADERS.code)).toBe('EVENT_PREPARE_FAILED');
    expect(header(DEAD_LETTER_HEADERS.stage)).toBe('render');
    expect(header(DEAD_LETTER_HEADERS.rule)).toBe('broken-render');
    expect(JSON.parse(header(DEAD_LETTER_HEADERS.idempotencyKeys) ?? '')).toEqual({
      'broken-render': `${topic}/0/8`,
    });
  });
});

describe('Pipeline over fakes of the sender and dead-letter writer, with an embedded ledger (no broker)', () => {
  let harness: PipelineHarness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });
  const outcomes = (h: PipelineHarness) =>
    h.logs
      .records()
      .filter((r) => r['msg'] === 'delivery')
      .map((r) => r['outcome']);

  it('sends a matching event once and records it sent', async () => {
    harness = await pipelineHarness();
    await harness.deliver(signup(1));
    expect(harness.sender.requests).toHaveLength(1);
    expect(harness.sender.requests[0]?.body).toMatchObject({ toAddresses: [{ email: 'ann@example.com' }] });
    const record = await harness.gate.lookup(harness.gate.ref(signup(1), 'welcome'));
    expect(record).toMatchObject({ state: 'sent', genesysId: 'conv-1', attempts: 1 });
    expect(harness.deadLetters.written).toEqual([]);
    expect(outcomes(harness)).toEqual(['sent']);
  });

  it('settles an event that matches no rule without any call', async () => {
    harness = await pipelineHarness();
    await harness.deliver(signup(2, { type: 'Other' }));
    expect(harness.sender.requests).toEqual([]);
    expect(outcomes(harness)).toEqual([]);
  });

  it('skips a redelivered event as a duplicate: Genesys is called once', async () => {
    harness = await pipelineHarness();
    await harness.deliver(signup(3));
    await harness.deliver(signup(3));
    expect(harness.sender.requests).toHaveLength(1);
    expect(outcomes(harness)).toEqual(['sent', 'skipped']);
  });

  it('dead-letters the event when Genesys refuses the request (a rule error), with the reason and no retry', async () => {
    harness = await pipelineHarness({ script: [refused('GENESYS_REJECTED', 400)] });
    await harness.deliver(signup(4));
    expect(harness.sender.requests).toHaveLength(1);
    expect(harness.deadLetters.written).toHaveLength(1);
    expect(harness.deadLetters.written[0]?.reason).toMatchObject({
      code: 'GENESYS_REJECTED',
      stage: 'deliver',
      rule: 'welcome',
      idempotencyKeys: { welcome: `${TOPIC}/0/4` },
    });
    const record = await harness.gate.lookup(harness.gate.ref(signup(4), 'welcome'));
    expect(record).toMatchObject({ state: 'dead-lettered', errorCode: 'GENESYS_REJECTED' });
  });

  it('dead-letters at render when a template names a variable the event lacks, without calling Genesys', async () => {
    harness = await pipelineHarness({ text: 'Your code is {{ code }}.' });
    await harness.deliver(signup(5));
    expect(harness.sender.requests).toEqual([]);
    expect(harness.deadLetters.written[0]?.reason).toMatchObject({ stage: 'render', rule: 'welcome' });
  });

  it('retries a transient failure, then sends once Genesys answers', async () => {
    harness = await pipelineHarness({ script: [refused('GENESYS_UNAVAILABLE', 503), 'ok'] });
    await harness.deliver(signup(6));
    expect(harness.sender.requests).toHaveLength(2);
    expect(harness.deadLetters.written).toEqual([]);
    const record = await harness.gate.lookup(harness.gate.ref(signup(6), 'welcome'));
    expect(record).toMatchObject({ state: 'sent', attempts: 2 });
    expect(harness.logs.text).toContain('delivery will be retried');
  });

  it('pauses on a systemic failure (invalid client) instead of dead-lettering, and resumes when it is gone', async () => {
    harness = await pipelineHarness({ script: [refused('GENESYS_INVALID_CLIENT', 400), 'ok'] });
    const seen: (string | undefined)[] = [];
    harness.health.onChange((paused) => seen.push(paused?.code));
    await harness.deliver(signup(7));
    expect(seen).toEqual(['GENESYS_INVALID_CLIENT', undefined]);
    expect(harness.health.paused).toBeUndefined();
    expect(harness.deadLetters.written).toEqual([]);
    expect(harness.sender.requests).toHaveLength(2);
  });

  it('calls a delivery another run left pending in doubt (at-most-once), without calling Genesys', async () => {
    harness = await pipelineHarness();
    const ref = harness.gate.ref(signup(8), 'welcome');
    await harness.ledger.begin({ ...ref, recipientHash: 'r', owner: 'a-crashed-bridge' });
    await harness.deliver(signup(8));
    expect(harness.sender.requests).toEqual([]);
    expect(harness.deadLetters.written).toEqual([]);
    expect(await harness.gate.lookup(ref)).toMatchObject({ state: 'in-doubt' });
    expect(outcomes(harness)).toEqual(['in-doubt']);
  });

  it('asks Genesys again about a delivery an earlier run marked in doubt (it died before it could ask)', async () => {
    const asked: string[] = [];
    const resolver = {
      resolve: (record: { idempotencyKey: string }) => {
        asked.push(record.idempotencyKey);
        return Promise.resolve({ kind: 'sent' as const, conversationId: 'conv-found', reason: 'one match' });
      },
    } as unknown as NonNullable<PipelineDeps['resolver']>;
    harness = await pipelineHarness({ resolver });
    const ref = harness.gate.ref(signup(9), 'welcome');
    await harness.ledger.begin({ ...ref, recipientHash: 'r', owner: 'a-crashed-bridge' });
    await harness.ledger.markInDoubt(ref, 'a-crashed-bridge', 'claimed and not recorded');
    await harness.deliver(signup(9));
    expect(outcomes(harness)).toEqual(['resolved']);
    expect(asked).toEqual([ref.idempotencyKey]);
    expect(harness.sender.requests).toEqual([]);
    expect(await harness.gate.lookup(ref)).toMatchObject({ state: 'sent', genesysId: 'conv-found' });
  });

  it('retries a dead-letter write that fails until it succeeds: the event is not lost', async () => {
    harness = await pipelineHarness({ script: [refused('GENESYS_REJECTED', 400)], deadLetterFailures: 2 });
    await harness.deliver(signup(9));
    expect(harness.deadLetters.attempts).toBe(3);
    expect(harness.deadLetters.written).toHaveLength(1);
  });
});
