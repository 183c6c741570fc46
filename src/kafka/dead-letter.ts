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
} as const;

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
