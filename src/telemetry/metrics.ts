import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The bridge's Prometheus metrics, served on the admin server's /metrics. Labels are bounded on purpose: rule names,
 * action kinds, outcomes, error codes, topics and partitions — never ids, keys or addresses.
 */
export class Metrics {
  readonly registry = new Registry();

  /**
   * Records taken in since the last scrape, by topic. Counted here, not with `eventsConsumed.inc` per record: on the
   * filter path prom-client's label hashing cost about a tenth of the bridge's share of the CPU.
   */
  readonly #consumed = new Map<string, number>();

  readonly eventsConsumed: Counter<'topic'> = new Counter({
    name: 'geb_events_consumed_total',
    help: 'Kafka records taken from the topics the rules name.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
    collect: () => this.#flushConsumed(),
  });

  readonly eventsMatched = new Counter({
    name: 'geb_events_matched_total',
    help: 'Events that matched at least one rule.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });

  readonly deliveries = new Counter({
    name: 'geb_deliveries_total',
    help: 'Final delivery outcomes (one per rule applied to an event).',
    labelNames: ['rule', 'action', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly deliveryStatus = new Counter({
    name: 'geb_delivery_status_total',
    help: 'What became of accepted sends, from the status checks: delivered, bounced, failed-downstream or unknown.',
    labelNames: ['rule', 'status'] as const,
    registers: [this.registry],
  });

  readonly deliveryLatency = new Histogram({
    name: 'geb_delivery_latency_seconds',
    help: "From the event's Kafka timestamp to Genesys accepting the send.",
    labelNames: ['rule', 'action'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });

  readonly genesysRequestDuration = new Histogram({
    name: 'geb_genesys_request_duration_seconds',
    help: 'Duration of each HTTP call to Genesys Cloud (API and token endpoint).',
    labelNames: ['route', 'status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'geb_delivery_retries_total',
    help: 'Deliveries tried again after a transient failure, by error code.',
    labelNames: ['rule', 'code'] as const,
    registers: [this.registry],
  });

  readonly rateLimitWait = new Histogram({
    name: 'geb_rate_limit_wait_seconds',
    help: 'Time a call waited for the rate limiter (or a Retry-After) before going out.',
    labelNames: ['limiter'] as const,
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60],
    registers: [this.registry],
  });

  readonly tokenRequests = new Counter({
    name: 'geb_token_requests_total',
    help: 'OAuth client-credentials token requests, by outcome (ok or an error code).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly deadLetters = new Counter({
    name: 'geb_dead_letters_total',
    help: 'Events written to a dead-letter topic, by error code and stage.',
    labelNames: ['code', 'stage'] as const,
    registers: [this.registry],
  });

  readonly consumerLag = new Gauge({
    name: 'geb_consumer_lag',
    help: 'Records behind the partition high watermark, as of the last fetch.',
    labelNames: ['topic', 'partition'] as const,
    registers: [this.registry],
  });

  readonly inflight = new Gauge({
    name: 'geb_inflight_deliveries',
    help: 'Deliveries started and not yet final.',
    registers: [this.registry],
  });

  readonly paused = new Gauge({
    name: 'geb_delivery_paused',
    help: '1 while delivery is paused on a systemic failure, by its error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly rulesReloads = new Counter({
    name: 'geb_rules_reloads_total',
    help: 'Rules file reloads, by outcome (applied or rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly consumerRestarts = new Counter({
    name: 'geb_kafka_consumer_restarts_total',
    help: 'Times kafkajs gave up on the consumer (broker unreachable, say) and scheduled a restart.',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'geb_' });
  }

  /** One record of `topic` taken in (geb_events_consumed_total). */
  countConsumed(topic: string): void {
    this.#consumed.set(topic, (this.#consumed.get(topic) ?? 0) + 1);
  }

  #flushConsumed(): void {
    for (const [topic, n] of this.#consumed) this.eventsConsumed.inc({ topic }, n);
    this.#consumed.clear();
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
