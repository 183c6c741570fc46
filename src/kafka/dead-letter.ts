import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { BridgeError, type ErrorCode } from '../errors.js';
import { headersFromContext } from '../telemetry/tracing.js';
import type { InboundMessage } from './message.js';

/** Where in the pipeline an event failed. */
export type Stage = 'decode' | 'match' | 'render' | 'deliver';

export interface DeadLetterReason {
  readonly code: ErrorCode;
  /** Free of personal data and secrets: BridgeError messages are written to be. */
  readonly message: string;
  readonly stage: Stage;
  readonly rule?: string;
  /**
   * The idempotency key of each rule the event matched, by rule name: a replay carries them back (REPLAY_HEADERS),
   * so that the ledger recognises the deliveries of the original event.
   */
  readonly idempotencyKeys?: Readonly<Record<string, string>>;
}

/** Header names of the reason, all under one prefix so they never clash with the producer's own headers. */
export const DEAD_LETTER_HEADERS = {
  code: 'geb.error.code',
  message: 'geb.error.message',
  stage: 'geb.error.stage',
  rule: 'geb.rule',
  topic: 'geb.source.topic',
  partition: 'geb.source.partition',
  offset: 'geb.source.offset',
  time: 'geb.dead-lettered.at',
  idempotencyKeys: 'geb.idempotency-keys',
} as const;

/**
 * Set by `geb dlq replay` on a republished record: the rule it is replayed for (the dead letter's `geb.rule`; the
 * event's other rules are not delivered again) and the original idempotency keys (JSON, by rule), so that the replayed
 * delivery is the same ledger record as the dead-lettered one. A dead letter without a rule (it failed to decode)
 * is replayed as a new event.
 */
export const REPLAY_HEADERS = {
  rule: 'geb.replay.rule',
  idempotencyKeys: 'geb.replay.idempotency-keys',
} as const;

/** Longer key maps are not carried (nor read back): a header is not the place for a rule set's worth of keys. */
export const MAX_KEYS_HEADER_BYTES = 16 * 1024;

const MAX_MESSAGE_LENGTH = 500;

/**
 * Writes events that no retry can deliver to the dead-letter topic: the original key, value and headers untouched
 * (so a replay is byte-identical), plus headers saying why.
 */
export class DeadLetterWriter {
  readonly #producer: Producer;
  readonly #topicTemplate: string;

  constructor(kafka: Kafka, topicTemplate: string) {
    this.#producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: true,
    });
    this.#topicTemplate = topicTemplate;
  }

  connect(): Promise<void> {
    return this.#producer.connect();
  }

  disconnect(): Promise<void> {
    return this.#producer.disconnect();
  }

  topicFor(sourceTopic: string): string {
    return this.#topicTemplate.replaceAll('{topic}', sourceTopic);
  }

  async write(message: InboundMessage, reason: DeadLetterReason, now: Date = new Date()): Promise<string> {
    const topic = this.topicFor(message.topic);
    const headers: IHeaders = {
      // The original trace headers stay as they are (same trace id); a record without any gets the current context.
      ...headersFromContext(),
      ...(message.headers as IHeaders),
      [DEAD_LETTER_HEADERS.code]: reason.code,
      [DEAD_LETTER_HEADERS.message]: reason.message.slice(0, MAX_MESSAGE_LENGTH),
      [DEAD_LETTER_HEADERS.stage]: reason.stage,
      [DEAD_LETTER_HEADERS.topic]: message.topic,
      [DEAD_LETTER_HEADERS.partition]: String(message.partition),
      [DEAD_LETTER_HEADERS.offset]: message.offset,
      [DEAD_LETTER_HEADERS.time]: now.toISOString(),
      ...(reason.rule !== undefined && { [DEAD_LETTER_HEADERS.rule]: reason.rule }),
    };
    const keys = reason.idempotencyKeys && JSON.stringify(reason.idempotencyKeys);
    if (keys !== undefined && Buffer.byteLength(keys) <= MAX_KEYS_HEADER_BYTES) {
      headers[DEAD_LETTER_HEADERS.idempotencyKeys] = keys;
    }
    try {
      await this.#producer.send({
        topic,
        acks: -1,
        messages: [{ key: message.key, value: message.value, headers }],
      });
    } catch (error) {
      throw new BridgeError('DEAD_LETTER_FAILED', `writing to ${topic} failed: ${(error as Error).name}`);
    }
    return topic;
  }
}

/** What a replayed record says about itself (REPLAY_HEADERS); undefined for any other record. */
export interface Replay {
  /** Only this rule is delivered; undefined: every matching rule, as for a new event. */
  readonly rule: string | undefined;
  readonly idempotencyKeys: Readonly<Record<string, string>>;
}

/**
 * Reads REPLAY_HEADERS. They come from whoever can write to the topic, as LEDGER_KEY_HEADER does: a malformed key map
 * is ignored (the record is then keyed as a new event), never an error.
 */
export function replayOf(headers: InboundMessage['headers']): Replay | undefined {
  const text = (name: string) => {
    const raw = headers[name];
    const first = Array.isArray(raw) ? raw[0] : raw;
    return first === undefined ? undefined : first.toString();
  };
  const rule = text(REPLAY_HEADERS.rule);
  const keysText = text(REPLAY_HEADERS.idempotencyKeys);
  if (rule === undefined && keysText === undefined) return undefined;
  return { rule: rule === '' ? undefined : rule, idempotencyKeys: parseKeys(keysText) };
}

function parseKeys(text: string | undefined): Record<string, string> {
  if (text === undefined || text.length > MAX_KEYS_HEADER_BYTES)
    return Object.create(null) as Record<string, string>;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return Object.create(null) as Record<string, string>;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return Object.create(null) as Record<string, string>;
  }
  // No prototype: a rule named `constructor` or `__proto__` must find nothing but its own key.
  const keys = Object.create(null) as Record<string, string>;
  for (const [rule, key] of Object.entries(parsed))
    if (typeof key === 'string' && key !== '') keys[rule] = key;
  return keys;
}
