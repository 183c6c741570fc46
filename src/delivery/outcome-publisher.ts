import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { OutcomeEvent, OutcomeListener } from './outcome-event.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Publishes each delivery's outcome to the outcome topic (OUTCOME_TOPIC; `{topic}` is the source topic), keyed like
 * the source event so that a consumer sees one event's outcomes in order. The value follows
 * schemas/outcome.schema.json. Publishing is off the delivery's path: outcomes are queued and sent in batches; a
 * failed batch is retried a few times, then logged and dropped — the ledger stays the record of what happened, and
 * an outcome queued when the process dies is lost.
 */
export class OutcomePublisher {
  readonly #producer: Producer;
  readonly #topicTemplate: string;
  readonly #logger: Logger;
  #queue: OutcomeEvent[] = [];
  #flushing: Promise<void> | undefined;
  #published = 0;

  constructor(kafka: Kafka, topicTemplate: string, logger: Logger) {
    this.#producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: true,
    });
    this.#topicTemplate = topicTemplate;
    this.#logger = logger;
  }

  connect(): Promise<void> {
    return this.#producer.connect();
  }

  /** Sends what is queued, then disconnects. */
  async close(): Promise<void> {
    await this.flush();
    await this.#producer.disconnect();
  }

  /** Outcomes published so far. */
  get published(): number {
    return this.#published;
  }

  topicFor(sourceTopic: string): string {
    return this.#topicTemplate.replaceAll('{topic}', sourceTopic);
  }

  readonly listener: OutcomeListener = (event) => {
    this.#queue.push(event);
    this.#flushing ??= this.#drain();
  };

  /** Resolves once everything queued so far was sent (or given up on). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    try {
      // One tick of grace lets the outcomes of concurrent deliveries go in one batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, 500);
        const byTopic = new Map<string, Message[]>();
        for (const event of batch) {
          const topic = this.topicFor(event.event.topic);
          const messages = byTopic.get(topic);
          if (messages) messages.push(outcomeMessage(event));
          else byTopic.set(topic, [outcomeMessage(event)]);
        }
        const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
        for (let attempt = 1; ; attempt++) {
          try {
            await this.#producer.sendBatch({ topicMessages, acks: -1 });
            this.#published += batch.length;
            break;
          } catch (error) {
            if (attempt >= 5) {
              this.#logger.error(
                { code: 'OUTCOME_PUBLISH_FAILED', dropped: batch.length, err: (error as Error).name },
                'outcomes could not be published and were dropped (the ledger still has them)',
              );
              break;
            }
            await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
          }
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }
}

/** The outcome record: the source event's key, a JSON value (schemas/outcome.schema.json), a few headers. */
export function outcomeMessage(event: OutcomeEvent): Message {
  return {
    key: event.event.key,
    value: JSON.stringify(outcomeValue(event)),
    headers: {
      'geb.outcome': event.outcome,
      ...(event.rule !== undefined && { 'geb.rule': event.rule }),
    },
  };
}

/** The value, with absent fields left out (not null), version first. */
export function outcomeValue(event: OutcomeEvent): Record<string, unknown> {
  const genesys = Object.fromEntries(Object.entries(event.genesys ?? {}).filter(([, v]) => v !== undefined));
  const value: Record<string, unknown> = {
    version: 1,
    outcome: event.outcome,
    at: event.at,
    rule: event.rule,
    action: event.action,
    idempotencyKey: event.idempotencyKey,
    event: event.event,
    ...(Object.keys(genesys).length > 0 && { genesys }),
    traceId: event.traceId,
    recipientHash: event.recipientHash,
    errorCode: event.errorCode,
    reason: event.reason,
  };
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
