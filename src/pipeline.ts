import { BridgeError, ShutdownError, isBridgeError, type ErrorCode } from './errors.js';
import { genesysIdOf, genesysMessageIdOf, recipientOf } from './genesys/actions.js';
import { checkedRequestFor } from './genesys/limits.js';
import type { GenesysSender } from './genesys/contact-batcher.js';
import type { Health } from './health.js';
import { Decoder, type Decoded } from './kafka/decoder.js';
import { replayOf, type DeadLetterWriter, type Replay, type Stage } from './kafka/dead-letter.js';
import { coordinatesOf, kafkaMetaOf, keyOf, type InboundMessage } from './kafka/message.js';
import { decide, type FailureOutcome } from './delivery/outcome.js';
import { backoffMs, type RetryPolicy } from './delivery/retry-policy.js';
import { certainlyNotDelivered, isFailure, type DeliveryGate } from './delivery/ledger/gate.js';
import type { DeliveryRecord, DeliveryRef, EventOrigin } from './delivery/ledger/ledger.js';
import type { DeliveryGuards } from './delivery/guards.js';
import type { InDoubtResolver } from './delivery/in-doubt-resolver.js';
import type { OutcomeEvent, OutcomeKind, OutcomeListener } from './delivery/outcome-event.js';
import type { RuleSet, Rule } from './rules/rule-set.js';
import { prefilterFor } from './rules/prefilter.js';
import { ruleIdempotencyKey, ruleOrderingKey } from './rules/rule-keys.js';
import { templateScope } from './rules/template.js';
import type { Logger, RecipientHasher } from './telemetry/logger.js';
import type { Metrics } from './telemetry/metrics.js';
import { SpanKind, contextFromHeaders, endSpan, inSpan, inSpanSync, startSpan } from './telemetry/tracing.js';
import type { PreparedEvent } from './kafka/consumer.js';
import { context, trace } from '@opentelemetry/api';

export interface PipelineDeps {
  /** Read on every event, so that a reload can swap it. */
  readonly rules: () => RuleSet;
  readonly genesys: GenesysSender;
  /** The sender of a rule that names a connection of the rules file; absent: every rule sends through `genesys`. */
  readonly senderFor?: (rule: Rule) => GenesysSender;
  readonly deadLetters: DeadLetterWriter;
  readonly health: Health;
  readonly retryPolicy: RetryPolicy;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** For the consume span's messaging.consumer.group.name. */
  readonly groupId?: string;
  /** The delivery ledger, consulted before every send (docs/deliveries.md). Absent: every event is sent. */
  readonly ledger?: DeliveryGate;
  /** Absent: plain JSON only, no schema registry. */
  readonly decoder?: Decoder;
  /** The stand-in for a recipient in logs and the ledger (keyed with RECIPIENT_HASH_KEY). */
  readonly recipientHash: RecipientHasher;
  /** false: every event is decoded, even one whose raw value can match no rule (EVENT_PREFILTER). Default true. */
  readonly prefilter?: boolean;
  /** Told of each delivery's final outcome (outcome topic, status checks). */
  readonly outcomes?: OutcomeListener;
  /** Consulted before a claim: the rule's maxEventAge and the suppression list (delivery/guards.ts). */
  readonly guards?: DeliveryGuards;
  /** Asks Genesys about a delivery an earlier run left pending, before calling it in doubt. */
  readonly resolver?: InDoubtResolver;
}

export interface HandleContext {
  /** Aborts waits (backoff, pause probes) when the bridge stops. */
  readonly stopSignal: AbortSignal;
  /** Aborts in-flight Genesys calls: fires only after the shutdown grace period. */
  readonly callSignal: AbortSignal;
  /** Keeps the consumer's group membership while an event takes long (retries, pauses). */
  readonly heartbeat: () => Promise<void>;
  /** Told when the event starts and stops waiting (backoff, pause probe), so its concurrency slot can be lent. */
  readonly waiting?: (waiting: boolean) => void;
}

/** The final outcome of one delivery (one rule applied to one event). */
export type DeliveryOutcome =
  'sent' | 'dead-lettered' | 'skipped' | 'in-doubt' | 'resolved' | 'expired' | 'suppressed';

/** The idempotency key of each rule an event matched, and whether the event is a replay (REPLAY_HEADERS). */
interface EventKeys {
  readonly keys: () => Readonly<Record<string, string>>;
  readonly replay: Replay | undefined;
}

/** One rule matched by an event: its ordering key, or why that key could not be rendered (then it dead-letters). */
interface MatchedRule {
  readonly rule: Rule;
  readonly orderingKey: string | undefined;
  readonly keyError?: BridgeError;
}

/**
 * The order of the stages: decode → match → order → render → deliver → record. `prepare` decodes and matches an event
 * and renders its ordering keys, in the consumer's fetch loop and in offset order; the event's `run` does the rest
 * once the scheduler lets it start, and resolves once the event's outcome is final (every matching rule sent or
 * dead-lettered), which is when its offset may be committed. Both throw only ShutdownError, or whatever the heartbeat
 * throws on a rebalance; the event is then redelivered.
 */
export class Pipeline {
  readonly #deps: PipelineDeps;
  readonly #decoder: Decoder;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#decoder = deps.decoder ?? new Decoder();
  }

  /**
   * One CONSUMER span per event, continuing the producer's trace from the record's `traceparent` header: started here,
   * ended when the event's deliveries are final (or at once when it needs none).
   */
  async prepare(message: InboundMessage, ctx: HandleContext): Promise<PreparedEvent> {
    this.#deps.metrics?.eventsConsumed.inc({ topic: message.topic });
    if (this.#skippedUndecoded(message)) return SETTLED;
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
    let work: (hooks: HandleContext) => Promise<void>;
    let orderingKeys: string[] = [];
    try {
      const prepared = await context.with(spanContext, () => this.#prepare(message, kafkaKey, log, ctx));
      if (prepared === 'settled') {
        endSpan(span);
        return SETTLED;
      }
      if ('deadLetter' in prepared) {
        const { deadLetter, stage } = prepared;
        work = (runCtx) => this.#deadLetter(message, deadLetter, stage, undefined, log, runCtx);
      } else {
        const { matched, scope } = prepared;
        orderingKeys = matched.flatMap((m) => (m.orderingKey === undefined ? [] : [m.orderingKey]));
        work = (runCtx) => this.#deliverAll(message, matched, scope, log, runCtx);
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
      run: (hooks) =>
        context
          .with(spanContext, () => work({ ...ctx, heartbeat: hooks.heartbeat, waiting: hooks.waiting }))
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
    ctx: HandleContext,
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
      const matched = this.#deps.rules().match(message.topic, event, kafkaMetaOf(message));
      span.setAttributes({ 'geb.rules.matched': matched.length, 'geb.rules': matched.map((r) => r.name) });
      return matched;
    });
    if (rules.length === 0) {
      if (this.#deps.logger.isLevelEnabled('debug')) log.debug('event matched no rule');
      return 'settled';
    }
    this.#deps.metrics?.eventsMatched.inc({ topic: message.topic });
    const scope = templateScope(event);
    const matched = rules.map((rule): MatchedRule => {
      try {
        return { rule, orderingKey: ruleOrderingKey(rule, scope, kafkaKey) };
      } catch (error) {
        if (!isBridgeError(error)) throw error;
        // Its delivery dead-letters when the event runs; it orders nothing meanwhile.
        return { rule, orderingKey: undefined, keyError: error };
      }
    });
    return { matched, scope };
  }

  async #deliverAll(
    message: InboundMessage,
    matched: readonly MatchedRule[],
    scope: Record<string, unknown>,
    log: Logger,
    ctx: HandleContext,
  ): Promise<void> {
    const run = this.#eventKeys(message, matched, scope);
    const only = run.replay?.rule;
    if (only !== undefined && !matched.some((m) => m.rule.name === only)) {
      log.warn(
        { replayRule: only },
        'a replay for a rule this event no longer matches: nothing is delivered',
      );
    }
    for (const { rule, keyError } of matched) {
      const ruleLog = log.child({ rule: rule.name, action: rule.action.kind });
      if (only !== undefined && rule.name !== only) {
        // A replay redoes the dead letter's rule only: the event's other rules had their outcome already.
        this.#deps.metrics?.deliveries.inc({ rule: rule.name, action: rule.action.kind, outcome: 'skipped' });
        ruleLog.info({ outcome: 'skipped', replayRule: only }, 'delivery');
        continue;
      }
      await this.#tracedDeliver(message, rule, scope, ruleLog, ctx, run, keyError);
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
    message: InboundMessage,
    rule: Rule,
    scope: Record<string, unknown>,
    log: Logger,
    ctx: HandleContext,
    run: EventKeys,
    keyError?: BridgeError,
  ): Promise<void> {
    const labels = { rule: rule.name, action: rule.action.kind };
    const attributes = { 'geb.rule': rule.name, 'geb.action': rule.action.kind };
    const metrics = this.#deps.metrics;
    metrics?.inflight.inc();
    try {
      await inSpan(`deliver ${rule.name}`, { attributes }, async (span) => {
        const outcome = await this.#deliver(message, rule, scope, log, ctx, run, keyError);
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

  async #deliver(
    message: InboundMessage,
    rule: Rule,
    scope: Record<string, unknown>,
    log: Logger,
    ctx: HandleContext,
    run: EventKeys,
    orderingKeyError?: BridgeError,
  ): Promise<DeliveryOutcome> {
    const gate = this.#deps.ledger;
    // A replay for this rule: its dead-lettered (or failed) record is claimed again rather than skipped.
    const replaying = run.replay?.rule === rule.name;
    const originalKey = run.replay?.idempotencyKeys[rule.name];
    let key: string | undefined;
    try {
      if (orderingKeyError) throw orderingKeyError;
      key = originalKey ?? ruleIdempotencyKey(rule, scope);
    } catch (thrown) {
      // A defect the event triggers (not a BridgeError) dead-letters it too: its partition must not stop on it.
      const error = isBridgeError(thrown) ? thrown : unexpected(thrown, 'render', log);
      // Without its key the delivery is recorded under the event's coordinates: a redelivery finds it there.
      const fallback = gate?.ref(message, rule.name, originalKey);
      if (gate && fallback) {
        const known = await this.#recording(() => gate.ledger.lookup(fallback), log, ctx);
        // `failed`: the dead-letter write is still owed; it is made below, with the same reason.
        if (known && known.state !== 'pending' && known.state !== 'failed') {
          return this.#skip(gate, fallback, known, log, ctx);
        }
      }
      await this.#deadLetter(message, error, 'render', rule.name, log, ctx, undefined, originalKey, run);
      return 'dead-lettered';
    }
    const ref = gate?.ref(message, rule.name, key);
    if (gate && ref) {
      // Checked before rendering too, so that a redelivered dead letter is not dead-lettered again.
      const known = await this.#recording(() => gate.ledger.lookup(ref), log, ctx);
      if (known && known.state !== 'pending' && !(replaying && isFailure(known))) {
        return this.#settleKnown(message, gate, ref, known, log, ctx, run);
      }
    }
    let rendered;
    let request;
    try {
      rendered = rule.action.render(scope);
      request = checkedRequestFor(rendered);
    } catch (thrown) {
      // A BridgeError is the event's fault. Anything else is a defect that this event triggers: dead-lettered as
      // EVENT_PREPARE_FAILED rather than crashing the consumer, which would restart on the same event for ever.
      const error = isBridgeError(thrown) ? thrown : unexpected(thrown, 'render', log);
      await this.#deadLetter(message, error, 'render', rule.name, log, ctx, undefined, key, run);
      return 'dead-lettered';
    }
    const recipient = this.#deps.recipientHash(recipientOf(rendered));
    const guarded = await this.#deps.guards?.check(rule, message, recipient);
    if (guarded) {
      if (gate && ref) {
        const info = { reason: guarded.reason, recipientHash: recipient };
        await this.#recording(() => gate.ledger.markOutcome(ref, guarded.state, info), log, ctx);
      }
      this.#emit(guarded.state, message, rule, key, { recipientHash: recipient, reason: guarded.reason });
      log.info({ outcome: guarded.state, recipient, reason: guarded.reason }, 'delivery');
      return guarded.state;
    }

    let attemptsBefore = 0;
    if (gate && ref) {
      const claim = await this.#recording(
        () => gate.claim(ref, rule.delivery, recipient, replaying),
        log,
        ctx,
      );
      if (!claim.proceed && claim.outcome === 'skipped') {
        return this.#settleKnown(message, gate, ref, claim.record, log, ctx, run);
      }
      const reconciled = claim.proceed
        ? undefined
        : await this.#reconcile(gate, ref, rule, claim.record, recipient, message, key, log, ctx);
      if (reconciled === 'resolved') return 'resolved';
      if (!claim.proceed && reconciled === undefined) {
        const { record } = claim;
        this.#emit('in-doubt', message, rule, key, { recipientHash: recipient, reason: record.reason });
        log.warn(
          {
            outcome: 'in-doubt',
            idempotencyKey: ref.idempotencyKey,
            state: record.state,
            recipient,
            reason: record.reason,
          },
          'delivery',
        );
        return 'in-doubt';
      }
      attemptsBefore = claim.proceed ? claim.attemptsBefore : (reconciled?.attempts ?? 0);
      if (claim.proceed && claim.tookOver)
        log.warn(
          { idempotencyKey: ref.idempotencyKey },
          'at-least-once: sending again a delivery an earlier run left unfinished',
        );
    }

    const sender = this.#deps.senderFor?.(rule) ?? this.#deps.genesys;
    // Whether a call may have reached Genesys: then a stop must leave the claim pending (in doubt), not forget it.
    let mayHaveReached = false;
    const firstTryAtMs = Date.now();
    // Every attempt's ININ-Correlation-Id: what Genesys support asks for when a delivery misbehaved.
    const correlationIds: string[] = [];
    let waitedMs = 0;
    // A heartbeat that fails (a rebalance) while the client waits for its budget must end the event, not be
    // classified as a Genesys failure.
    let heartbeatError: unknown;
    const heartbeat = async () => {
      try {
        await ctx.heartbeat();
      } catch (error) {
        heartbeatError = error;
        throw error;
      }
    };
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await sender.send(request, ctx.callSignal, {
          waitSignal: ctx.stopSignal,
          heartbeat,
        });
        correlationIds.push(...response.correlationIds);
        waitedMs += response.waitedMs;
      } catch (error) {
        // An aborted call may have reached Genesys: the claim stays pending, to be resolved by the rule's policy.
        if (error instanceof ShutdownError || (heartbeatError !== undefined && error === heartbeatError)) {
          throw error;
        }
        if (isBridgeError(error)) correlationIds.push(...error.correlationIds);
        mayHaveReached ||= !certainlyNotDelivered(error);
        const outcome = decide(error, attempt, this.#deps.retryPolicy, Date.now() - firstTryAtMs);
        if (outcome.kind === 'dead-letter') {
          log.warn({ correlationIds }, 'Genesys refused the delivery');
          // decide() dead-letters only BridgeErrors.
          await this.#deadLetter(
            message,
            error as BridgeError,
            'deliver',
            rule.name,
            log,
            ctx,
            attemptsBefore + attempt,
            key,
            run,
          );
          return 'dead-lettered';
        }
        if (outcome.kind === 'retry')
          this.#deps.metrics?.retries.inc({ rule: rule.name, code: outcome.code });
        try {
          await this.#waitOut(outcome, attempt, log, ctx);
        } catch (waitError) {
          if (gate && ref && !mayHaveReached) await gate.ledger.release(ref, gate.owner).catch(() => {});
          throw waitError;
        }
        continue;
      }
      if (this.#deps.health.resume()) log.info('Genesys accepts calls again: delivery resumed');
      const conversationId = genesysIdOf(response.body);
      trace.getActiveSpan()?.setAttributes({
        'genesys.conversation.id': conversationId ?? '',
        'genesys.correlation_id': response.correlationId ?? '',
        'geb.recipient.hash': recipient,
        'geb.attempts': attemptsBefore + attempt,
      });
      if (gate && ref) {
        const info = {
          genesysId: conversationId,
          correlationId: response.correlationId,
          attempts: attemptsBefore + attempt,
        };
        await this.#recording(() => gate.ledger.markSent(ref, info), log, ctx);
      }
      this.#emit('sent', message, rule, key, {
        conversationId,
        messageId: rendered.kind === 'agentlessMessage' ? genesysMessageIdOf(response.body) : undefined,
        correlationId: response.correlationId,
        recipientHash: recipient,
      });
      log.info(
        {
          outcome: 'sent',
          conversationId,
          correlationId: response.correlationId,
          correlationIds,
          rateLimitWaitMs: waitedMs,
          recipient,
          attempts: attempt,
        },
        'delivery',
      );
      return 'sent';
    }
  }

  /**
   * A redelivery of a delivery the ledger knows. A `failed` record still owes its dead-letter write (an earlier run
   * stopped while the write kept failing): it is made now, with the recorded reason and no new Genesys call, and the
   * offset is committed only once the dead-letter topic has the event. Any other state is final: skipped.
   */
  async #settleKnown(
    message: InboundMessage,
    gate: DeliveryGate,
    ref: DeliveryRef,
    record: DeliveryRecord,
    log: Logger,
    ctx: HandleContext,
    run: EventKeys,
  ): Promise<'skipped' | 'dead-lettered'> {
    if (record.state !== 'failed') return this.#skip(gate, ref, record, log, ctx);
    const code = (record.errorCode ?? 'DEAD_LETTER_FAILED') as ErrorCode;
    const error = new BridgeError(code, record.reason ?? 'dead-lettered by an earlier run', {
      correlationId: record.correlationId,
    });
    // The ledger keeps no stage: a failure after Genesys calls was the delivery's, one before any the render's.
    const stage: Stage = record.attempts > 0 ? 'deliver' : 'render';
    log.warn(
      { idempotencyKey: ref.idempotencyKey, code },
      'dead-letter write owed by an earlier run: writing it now',
    );
    await this.#deadLetter(
      message,
      error,
      stage,
      ref.rule,
      log,
      ctx,
      record.attempts > 0 ? record.attempts : undefined,
      ref.idempotencyKey,
      run,
    );
    return 'dead-lettered';
  }

  /**
   * A delivery the gate just found in doubt: asks Genesys (delivery/in-doubt-resolver.ts). Sent: recorded `sent` with
   * its conversation id ('resolved'). Certainly not sent: taken back to pending for this run, which sends it (the
   * returned record). Otherwise it stays in doubt, with the reason added (undefined).
   */
  async #reconcile(
    gate: DeliveryGate,
    ref: DeliveryRef & EventOrigin,
    rule: Rule,
    record: DeliveryRecord,
    recipient: string,
    message: InboundMessage,
    key: string | undefined,
    log: Logger,
    ctx: HandleContext,
  ): Promise<'resolved' | DeliveryRecord | undefined> {
    const resolver = this.#deps.resolver;
    if (!resolver) return undefined;
    const resolution = await resolver.resolve(record, rule.action.kind, {
      waitSignal: ctx.stopSignal,
      heartbeat: ctx.heartbeat,
    });
    // Compare-and-set: of two claimants (a rebalance), only one acts on the resolution.
    const input = { ...ref, recipientHash: recipient, owner: gate.owner };
    const mine = await this.#recording(() => gate.ledger.reclaimInDoubt(input), log, ctx);
    if (!mine) return undefined;
    if (resolution.kind === 'sent') {
      const info = { genesysId: resolution.conversationId, attempts: record.attempts };
      await this.#recording(() => gate.ledger.markSent(ref, info), log, ctx);
      this.#emit('resolved', message, rule, key, {
        conversationId: resolution.conversationId,
        recipientHash: recipient,
        reason: resolution.reason,
      });
      log.info(
        {
          outcome: 'resolved',
          idempotencyKey: ref.idempotencyKey,
          conversationId: resolution.conversationId,
        },
        'delivery',
      );
      return 'resolved';
    }
    if (resolution.kind === 'not-sent') {
      log.warn(
        { idempotencyKey: ref.idempotencyKey, reason: resolution.reason },
        'in doubt, not sent: sending now, once',
      );
      return mine;
    }
    const reason = `${record.reason ?? 'in doubt'}; ${resolution.reason}`;
    await this.#recording(() => gate.ledger.markInDoubt(ref, gate.owner, reason), log, ctx);
    log.warn(
      { idempotencyKey: ref.idempotencyKey, reason: resolution.reason },
      'in doubt: Genesys could not settle it',
    );
    return undefined;
  }

  /** Tells the outcome listener (outcome topic, status checks); never fails the delivery. */
  #emit(
    outcome: OutcomeKind,
    message: InboundMessage,
    rule: Rule | undefined,
    idempotencyKey: string | undefined,
    details: {
      conversationId?: string | undefined;
      messageId?: string | undefined;
      correlationId?: string | undefined;
      recipientHash?: string | undefined;
      errorCode?: string | undefined;
      reason?: string | undefined;
    },
  ): void {
    const listener = this.#deps.outcomes;
    if (!listener) return;
    const ref = rule ? this.#deps.ledger?.ref(message, rule.name, idempotencyKey) : undefined;
    const { conversationId, messageId, correlationId, ...rest } = details;
    const event: OutcomeEvent = {
      outcome,
      at: new Date().toISOString(),
      rule: rule?.name,
      action: rule?.action.kind,
      idempotencyKey: ref?.idempotencyKey ?? idempotencyKey,
      event: {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        key: keyOf(message) ?? null,
      },
      genesys: { conversationId, messageId, correlationId },
      traceId: ref?.traceId ?? trace.getActiveSpan()?.spanContext().traceId,
      ...rest,
    };
    listener(event);
  }

  /** A redelivery of a delivery whose outcome is final: counted on its record, not sent or dead-lettered again. */
  async #skip(
    gate: DeliveryGate,
    ref: DeliveryRef,
    record: DeliveryRecord,
    log: Logger,
    ctx: HandleContext,
  ): Promise<'skipped'> {
    await this.#recording(() => gate.ledger.markSkipped(ref), log, ctx);
    log.info(
      {
        outcome: 'skipped',
        idempotencyKey: ref.idempotencyKey,
        state: record.state,
        conversationId: record.genesysId,
        recipient: record.recipientHash,
      },
      'delivery',
    );
    return 'skipped';
  }

  /** A ledger read or write: retried (heartbeating) until it succeeds, since deciding without it risks a duplicate. */
  async #recording<T>(operation: () => Promise<T>, log: Logger, ctx: HandleContext): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        const delayMs = backoffMs(attempt, this.#deps.retryPolicy);
        log.error(
          { code: isBridgeError(error) ? error.code : 'INTERNAL', attempt, retryInMs: delayMs },
          `delivery ledger unavailable, retrying: ${(error as Error).message}`,
        );
        await wait(delayMs, ctx);
      }
    }
  }

  /**
   * Decodes. An event at fault comes back as its error, to be dead-lettered when it runs; a registry at fault is retried
   * or paused on, never dead-lettered.
   */
  async #decode(message: InboundMessage, log: Logger, ctx: HandleContext): Promise<Decoded | BridgeError> {
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
        await this.#waitOut(outcome, attempt, log, ctx);
      }
    }
  }

  async #waitOut(
    outcome: Exclude<FailureOutcome, { kind: 'dead-letter' }>,
    attempt: number,
    log: Logger,
    ctx: HandleContext,
  ) {
    if (outcome.kind === 'pause') {
      if (this.#deps.health.pause(outcome.code, outcome.reason)) {
        log.error(
          { code: outcome.code, probeInMs: outcome.probeInMs },
          `delivery paused: ${outcome.reason}. Nothing is committed or dead-lettered until this is fixed; probing again every ${Math.round(outcome.probeInMs / 1000)} s`,
        );
      }
      await wait(outcome.probeInMs, ctx);
      return;
    }
    log.warn(
      { code: outcome.code, attempt, retryInMs: outcome.delayMs },
      `delivery will be retried: ${outcome.reason}`,
    );
    await wait(outcome.delayMs, ctx);
  }

  /** Dead-letters the event; retries the write itself until it succeeds, since dropping it would lose the event. */
  async #deadLetter(
    message: InboundMessage,
    error: BridgeError,
    stage: Stage,
    rule: string | undefined,
    log: Logger,
    ctx: HandleContext,
    attempts?: number,
    idempotencyKey?: string,
    run?: EventKeys,
  ): Promise<void> {
    const { code, message: reason } = error;
    const gate = this.#deps.ledger;
    const ref: (DeliveryRef & EventOrigin) | undefined =
      rule === undefined ? undefined : gate?.ref(message, rule, idempotencyKey);
    const failure = { errorCode: code, reason, correlationId: error.correlationId, attempts };
    // Recorded before the write too, so that a crash in between still leaves the final error in the history.
    if (gate && ref) await this.#recording(() => gate.ledger.markFailed(ref, failure), log, ctx);
    for (let attempt = 1; ; attempt++) {
      try {
        const topic = await this.#deps.deadLetters.write(message, {
          code,
          message: reason,
          stage,
          rule,
          ...(run && { idempotencyKeys: run.keys() }),
        });
        this.#deps.metrics?.deadLetters.inc({ code, stage });
        if (gate && ref) await this.#recording(() => gate.ledger.markDeadLettered(ref, failure), log, ctx);
        const dead = this.#deps.rules().rules.find((r) => r.name === rule);
        this.#emit('dead-lettered', message, dead, idempotencyKey, {
          correlationId: error.correlationId,
          errorCode: code,
          reason,
        });
        log.warn({ outcome: 'dead-lettered', code, stage, deadLetterTopic: topic, reason }, 'delivery');
        return;
      } catch (writeError) {
        const delayMs = backoffMs(attempt, this.#deps.retryPolicy);
        log.error(
          { source: coordinatesOf(message), attempt, retryInMs: delayMs },
          `dead-letter write failed, retrying: ${(writeError as Error).message}`,
        );
        await wait(delayMs, ctx);
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

/**
 * An unexpected error while an event was prepared (decoded, matched, its keys or request rendered), as the event's
 * dead-letter reason. The reason and the log carry
 * the error's type and stack frames only: a message of an arbitrary error may quote the event's data.
 */
function unexpected(error: unknown, stage: Stage, log: Logger): BridgeError {
  const name = error instanceof Error ? error.name : typeof error;
  const frames = error instanceof Error ? (error.stack ?? '').split('\n').slice(1, 6).join('\n') : '';
  log.error(
    { code: 'EVENT_PREPARE_FAILED', stage, errorType: name, stack: frames },
    `unexpected ${name} while the event was prepared (${stage}): the event is dead-lettered`,
  );
  return new BridgeError(
    'EVENT_PREPARE_FAILED',
    `unexpected ${name} while the event was prepared (stage ${stage}); the bridge's log has where`,
  );
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

const HEARTBEAT_EVERY_MS = 3_000;

/** Sleeps `ms`, heartbeating the group meanwhile; throws ShutdownError as soon as the bridge stops. */
async function wait(ms: number, ctx: HandleContext): Promise<void> {
  const until = Date.now() + ms;
  ctx.waiting?.(true);
  try {
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return;
      await sleep(Math.min(left, HEARTBEAT_EVERY_MS), ctx.stopSignal);
      await ctx.heartbeat();
    }
  } finally {
    ctx.waiting?.(false);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new ShutdownError());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ShutdownError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
