import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from '../src/delivery/retry-policy.js';
import type { GenesysSender } from '../src/genesys/contact-batcher.js';
import { Health } from '../src/health.js';
import { DeadLetterWriter, DEAD_LETTER_HEADERS } from '../src/kafka/dead-letter.js';
import type { InboundMessage } from '../src/kafka/message.js';
import { Pipeline, type EventContext } from '../src/pipeline.js';
import type { Rule, RuleSet } from '../src/rules/rule-set.js';
import { createLogger, recipientHasher } from '../src/telemetry/logger.js';
import { LogCapture } from './support/bridge.js';
import { createTopic, kafka, readTopic, uniqueName } from './support/kafka.js';

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
