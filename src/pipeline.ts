import { context } from '@opentelemetry/api';
import { BridgeError, isBridgeError } from './errors.js';
import type { GenesysRequest } from './genesys/client.js';
import { checkedRequestFor } from './genesys/limits.js';
import { Decoder, type Decoded } from './kafka/decoder.js';
import { replayOf, type Replay, type Stage } from './kafka/dead-letter.js';
import { kafkaMetaOf, keyOf, type InboundMessage } from './kafka/message.js';
import {
  DeliveryAttempts,
  unexpected,
  type AttemptDeps,
  type Delivery,
  type DeliveryOutcome,
  type EventContext,
  type EventKeys,
} from './delivery/attempt.js';
import { decide } from './delivery/outcome.js';
import type { PreparedEvent } from './delivery/runner.js';
import type { RenderedAction } from './rules/action.js';
import type { Rule, RuleSet } from './rules/rule-set.js';
import { prefilterFor } from './rules/prefilter.js';
import { ruleIdempotencyKey, ruleOrderingKey } from './rules/rule-keys.js';
import { templateScope } from './rules/template.js';
import type { Logger } from './telemetry/logger.js';
import { SpanKind, contextFromHeaders, endSpan, inSpan, inSpanSync, startSpan } from './telemetry/tracing.js';

export type { DeliveryOutcome, EventContext };

export interface PipelineDeps extends AttemptDeps {
  /** Read on every event, so that a reload can swap it. */
  readonly rules: () => RuleSet;
  readonly logger: Logger;
  /** For the consume span's messaging.consumer.group.name. */
  readonly groupId?: string;
  /** Absent: plain JSON only, no schema registry. */
  readonly decoder?: Decoder;
  /** false: every event is decoded, even one whose raw value can match no rule (EVENT_PREFILTER). Default true. */
  readonly prefilter?: boolean;
}

/** One rule matched by an event: its ordering key, or why that key could not be rendered (then it dead-letters). */
export interface MatchedRule {
  readonly rule: Rule;
  readonly orderingKey: string | undefined;
  readonly keyError?: BridgeError;
}

/**
 * The plan: decode → match → keys → render → check, each stage plain data in and out, no network and no ledger. The
 * pipeline runs it around its waits, ledger reads and Genesys calls; `geb rules test` runs it as it is, so that a dry
 * run shows what the bridge would do.
 */
export const plan = {
  /** The rules the (decoded) event matches, in the rules file's order. */
  match(rules: RuleSet, message: InboundMessage, event: unknown): readonly Rule[] {
    return rules.match(message.topic, event, kafkaMetaOf(message));
  },
  /**
   * Each matched rule's ordering key (default: the Kafka key). A key that cannot be rendered is kept as the rule's
   * error: its delivery dead-letters when the event runs, and it orders nothing meanwhile.
   */
  orderingKeys(
    rules: readonly Rule[],
    scope: Record<string, unknown>,
    kafkaKey: string | undefined,
  ): MatchedRule[] {
    return rules.map((rule): MatchedRule => {
      try {
        return { rule, orderingKey: ruleOrderingKey(rule, scope, kafkaKey) };
      } catch (error) {
        if (!isBridgeError(error)) throw error;
        return { rule, orderingKey: undefined, keyError: error };
      }
    });
  },
  /**
   * The delivery's idempotency key: a replay's original key, else the rule's own rendered; undefined: the event's
   * default key. Throws the ordering key's error first: a key that cannot be rendered dead-letters before the action.
   */
  idempotencyKey(
    matched: MatchedRule,
    scope: Record<string, unknown>,
    originalKey?: string,
  ): string | undefined {
    if (matched.keyError) throw matched.keyError;
    return originalKey ?? ruleIdempotencyKey(matched.rule, scope);
  },
  /** The action rendered, and the Genesys request checked against Genesys' limits. */
  render(rule: Rule, scope: Record<string, unknown>): { rendered: RenderedAction; request: GenesysRequest } {
    const rendered = rule.action.render(scope);
    return { rendered, request: checkedRequestFor(rendered) };
  },
} as const;

/**
 * The order of the stages. `prepare` decodes and matches an event and renders its ordering keys, in the consumer's
 * fetch loop and in offset order; the event's `run` does the rest once the delivery runner lets it start (keys,
 * render, check, then one delivery attempt per matched rule), and resolves once the event's outcome is final (every
 * matching rule sent or dead-lettered), which is when its offset may be committed. Both throw only ShutdownError, or
 * whatever the heartbeat throws on a rebalance; the event is then redelivered.
 */
export class Pipeline {
  readonly #deps: PipelineDeps;
  readonly #decoder: Decoder;
  readonly #attempts: DeliveryAttempts;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#decoder = deps.decoder ?? new Decoder();
    this.#attempts = new DeliveryAttempts(deps);
  }

  /**
   * One CONSUMER span per event, continuing the producer's trace from the record's `traceparent` header: started here,
   * ended when the event's deliveries are final (or at once when it needs none).
   */
  prepare(message: InboundMessage, ctx: EventContext): PreparedEvent | Promise<PreparedEvent> {
    this.#deps.metrics?.countConsumed(message.topic);
    // Synchronous for an event the prefilter settles (most of a busy topic): no promise, no turn of the microtask queue.
    if (this.#skippedUndecoded(message)) return SETTLED;
    return this.#prepareDecoded(message, ctx);
  }

  async #prepareDecoded(message: InboundMessage, ctx: EventContext): Promise<PreparedEvent> {
    const kafkaKey = keyOf(message);
    const { span, context: spanContext } = startSpan(`process ${message.topic}`, {
      kind: SpanKind.CONSUMER,
      parent: contextFromHeaders(message.headers),
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': message.topic,
        'messaging.destination.partition.id': String(message.partition),
        'messaging.kafka.offset': Number(message.offset),
        'messaging.kafka.message.key': kafkaKey,
        'messaging.consumer.group.name': this.#deps.groupId,
      },
    });
    const log = lazyChild(this.#deps.logger, {
      event: {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        key: kafkaKey,
      },
    });
    let work: (runCtx: EventContext) => Promise<void>;
    let orderingKeys: string[] = [];
    try {
      const prepared = await context.with(spanContext, () => this.#prepare(message, kafkaKey, log, ctx));
      if (prepared === 'settled') {
        endSpan(span);
        return SETTLED;
      }
      if ('deadLetter' in prepared) {
        const { deadLetter, stage } = prepared;
        work = (runCtx) => this.#attempts.deadLetter({ message, error: deadLetter, stage, log, ctx: runCtx });
      } else {
        const { matched, scope } = prepared;
        orderingKeys = matched.flatMap((m) => (m.orderingKey === undefined ? [] : [m.orderingKey]));
        work = (runCtx) => this.#runEvent(message, matched, scope, log, runCtx);
      }
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      endSpan(span, error);
    };
    return {
      orderingKeys,
      settled: false,
      run: (waits) =>
        context
          .with(spanContext, () => work({ ...ctx, heartbeat: waits.heartbeat, waiting: waits.waiting }))
          .then(
            () => end(),
            (error: unknown) => {
              end(error);
              throw error;
            },
          ),
      drop: () => {
        if (ended) return;
        span.setAttribute('geb.requeued', true);
        end();
      },
    };
  }

  /** An event whose raw value can match no rule (src/rules/prefilter.ts): settled as "matched no rule", undecoded. */
  #skippedUndecoded(message: InboundMessage): boolean {
    if (this.#deps.prefilter === false) return false;
    const value = this.#decoder.plainJsonValue(message);
    if (value === undefined || prefilterFor(this.#deps.rules()).mayMatch(message.topic, value)) return false;
    const logger = this.#deps.logger;
    if (logger.isLevelEnabled('debug')) {
      const { topic, partition, offset } = message;
      logger
        .child({ event: { topic, partition, offset, key: keyOf(message) } })
        .debug('event matched no rule');
    }
    return true;
  }

  async #prepare(
    message: InboundMessage,
    kafkaKey: string | undefined,
    log: Logger,
    ctx: EventContext,
  ): Promise<
    | 'settled'
    | { deadLetter: BridgeError; stage: Stage }
    | { matched: MatchedRule[]; scope: Record<string, unknown> }
  > {
    const decoded = await this.#decode(message, log, ctx);
    if (decoded instanceof BridgeError) return { deadLetter: decoded, stage: 'decode' };
    if (decoded.kind === 'tombstone') {
      log.debug('tombstone skipped');
      return 'settled';
    }
    try {
      return this.#match(message, decoded.event, kafkaKey, log);
    } catch (error) {
      // A defect that this event triggers must not stop its partition: the event is set aside, the next one goes on.
      return { deadLetter: unexpected(error, 'match', log), stage: 'match' };
    }
  }

  /** Matches the event against the rules and renders each matched rule's ordering key. Synchronous: no waits. */
  #match(
    message: InboundMessage,
    event: unknown,
    kafkaKey: string | undefined,
    log: Logger,
  ): 'settled' | { matched: MatchedRule[]; scope: Record<string, unknown> } {
    const rules = inSpanSync('match', (span) => {
      const matched = plan.match(this.#deps.rules(), message, event);
      span.setAttributes({ 'geb.rules.matched': matched.length, 'geb.rules': matched.map((r) => r.name) });
      return matched;
    });
    if (rules.length === 0) {
      if (this.#deps.logger.isLevelEnabled('debug')) log.debug('event matched no rule');
      return 'settled';
    }
    this.#deps.metrics?.eventsMatched.inc({ topic: message.topic });
    const scope = templateScope(event);
    return { matched: plan.orderingKeys(rules, scope, kafkaKey), scope };
  }

  /** The run: one delivery per matched rule, in the rules file's order. */
  async #runEvent(
    message: InboundMessage,
    matched: readonly MatchedRule[],
    scope: Record<string, unknown>,
    log: Logger,
    ctx: EventContext,
  ): Promise<void> {
    const keys = this.#eventKeys(message, matched, scope);
    const only = keys.replay?.rule;
    if (only !== undefined && !matched.some((m) => m.rule.name === only)) {
      log.warn(
        { replayRule: only },
        'a replay for a rule this event no longer matches: nothing is delivered',
      );
    }
    for (const m of matched) {
      const { rule } = m;
      const ruleLog = log.child({ rule: rule.name, action: rule.action.kind });
      if (only !== undefined && rule.name !== only) {
        // A replay redoes the dead letter's rule only: the event's other rules had their outcome already.
        this.#deps.metrics?.deliveries.inc({ rule: rule.name, action: rule.action.kind, outcome: 'skipped' });
        ruleLog.info({ outcome: 'skipped', replayRule: only }, 'delivery');
        continue;
      }
      await this.#tracedDeliver({ message, rule, log: ruleLog, ctx, keys }, m, scope);
    }
  }

  /**
   * Each matched rule's idempotency key, for the ledger and for the dead-letter record (so that a replay finds the
   * same records): a replayed event's original keys, else the rule's own key rendered, else the event's default key.
   */
  #eventKeys(
    message: InboundMessage,
    matched: readonly MatchedRule[],
    scope: Record<string, unknown>,
  ): EventKeys {
    const replay = replayOf(message.headers);
    let memo: Record<string, string> | undefined;
    // Wanted only when a delivery dead-letters: rendering every rule's key for every event would cost the hot path.
    return { replay, keys: () => (memo ??= this.#renderKeys(message, matched, scope, replay)) };
  }

  #renderKeys(
    message: InboundMessage,
    matched: readonly MatchedRule[],
    scope: Record<string, unknown>,
    replay: Replay | undefined,
  ): Record<string, string> {
    // No prototype: a rule may be named `__proto__`.
    const keys = Object.create(null) as Record<string, string>;
    for (const { rule } of matched) {
      let key = replay?.idempotencyKeys[rule.name];
      if (key === undefined) {
        try {
          key = ruleIdempotencyKey(rule, scope);
        } catch {
          // The delivery dead-letters under its default key, as #deliver decides; the render error is its reason.
        }
      }
      keys[rule.name] = key ?? this.#deps.ledger?.idempotencyKey(message) ?? coordinatesKey(message);
    }
    return keys;
  }

  /** One span per delivery (rule × event), the parent of the token and Genesys HTTP spans. */
  async #tracedDeliver(
    delivery: Delivery,
    matched: MatchedRule,
    scope: Record<string, unknown>,
  ): Promise<void> {
    const { rule, message } = delivery;
    const labels = { rule: rule.name, action: rule.action.kind };
    const attributes = { 'geb.rule': rule.name, 'geb.action': rule.action.kind };
    const metrics = this.#deps.metrics;
    metrics?.inflight.inc();
    try {
      await inSpan(`deliver ${rule.name}`, { attributes }, async (span) => {
        const outcome = await this.#deliver(delivery, matched, scope);
        span.setAttribute('geb.outcome', outcome);
        metrics?.deliveries.inc({ ...labels, outcome });
        if (outcome === 'sent') {
          metrics?.deliveryLatency.observe(
            labels,
            Math.max(0, Date.now() - Number(message.timestamp)) / 1000,
          );
        }
      });
    } finally {
      metrics?.inflight.dec();
    }
  }

  /** One delivery: keys → (what the ledger knows) → render → check → one attempt (claim, call, retry, record). */
  async #deliver(
    delivery: Delivery,
    matched: MatchedRule,
    scope: Record<string, unknown>,
  ): Promise<DeliveryOutcome> {
    const { message, rule, keys } = delivery;
    const attempts = this.#attempts;
    let key: string | undefined;
    try {
      key = plan.idempotencyKey(matched, scope, keys.replay?.idempotencyKeys[rule.name]);
    } catch (thrown) {
      return attempts.keyFailed(delivery, thrown);
    }
    const ref = attempts.ref(message, rule.name, key);
    const known = await attempts.known(delivery, ref);
    if (known) return known;
    let rendered;
    try {
      rendered = plan.render(rule, scope);
    } catch (thrown) {
      return attempts.renderFailed(delivery, key, thrown);
    }
    return attempts.attempt(delivery, key, ref, rendered.rendered, rendered.request);
  }

  /**
   * Decodes. An event at fault comes back as its error, to be dead-lettered when it runs; a registry at fault is retried
   * or paused on, never dead-lettered.
   */
  async #decode(message: InboundMessage, log: Logger, ctx: EventContext): Promise<Decoded | BridgeError> {
    for (let attempt = 1; ; attempt++) {
      try {
        const decoded = await inSpan('decode', {}, () => this.#decoder.decode(message));
        if (attempt > 1 && this.#deps.health.resume()) log.info('the schema registry answers again: resumed');
        return decoded;
      } catch (error) {
        // Unlike in delivery, a defect here dead-letters: the event cannot get past the decoder, and retrying it
        // forever would stop its partition for good (a value that overflows a decoder's recursion, say).
        if (!isBridgeError(error)) return unexpected(error, 'decode', log);
        const outcome = decide(error, attempt, this.#deps.retryPolicy);
        if (outcome.kind === 'dead-letter') return error;
        await this.#attempts.waitOut(outcome, attempt, log, ctx);
      }
    }
  }
}

/**
 * A child logger made on first use. Most events (those that match no rule) log nothing, and making a pino child
 * with redaction costs more than deciding the event (about 10% of the filter path's CPU in a profile).
 */
function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(parent, {
    get(_target, property) {
      child ??= parent.child(bindings);
      const value: unknown = Reflect.get(child, property, child);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(child) : value;
    },
  });
}

/** The default idempotency key without a ledger: the event's coordinates, as the ledger's default. */
function coordinatesKey(message: InboundMessage): string {
  return `${message.topic}/${message.partition}/${message.offset}`;
}

/** An event with nothing to deliver. */
const SETTLED: PreparedEvent = {
  orderingKeys: [],
  settled: true,
  run: () => Promise.resolve(),
  drop: () => {},
};
