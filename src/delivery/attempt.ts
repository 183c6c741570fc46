import { trace } from '@opentelemetry/api';
import { BridgeError, ShutdownError, isBridgeError, type ErrorCode } from '../errors.js';
import { genesysIdOf, genesysMessageIdOf, recipientOf } from '../genesys/actions.js';
import type { GenesysRequest } from '../genesys/client.js';
import type { GenesysSender } from '../genesys/contact-batcher.js';
import type { Health } from '../health.js';
import type { DeadLetterWriter, Replay, Stage } from '../kafka/dead-letter.js';
import { coordinatesOf, keyOf, type InboundMessage } from '../kafka/message.js';
import type { RenderedAction } from '../rules/action.js';
import type { Rule, RuleSet } from '../rules/rule-set.js';
import type { Logger, RecipientHasher } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { waitOut, type Waits } from '../wait.js';
import type { DeliveryGuards } from './guards.js';
import type { InDoubtResolver } from './in-doubt-resolver.js';
import { certainlyNotDelivered, isFailure, type DeliveryGate } from './ledger/gate.js';
import type { DeliveryRecord, DeliveryRef, EventOrigin } from './ledger/ledger.js';
import { backoffMs, type RetryPolicy } from './retry-policy.js';
import { decide, type FailureOutcome } from './outcome.js';
import type { OutcomeEvent, OutcomeKind, OutcomeListener } from './outcome-event.js';

/** What one event's run may wait on and abort: its waits (backoff, pause probes) and its Genesys calls. */
export interface EventContext extends Waits {
  /** Aborts waits (backoff, pause probes) when the bridge stops. */
  readonly waitSignal: AbortSignal;
  /** Aborts in-flight Genesys calls: fires only after the shutdown grace period. */
  readonly callSignal: AbortSignal;
  /** Keeps the consumer's group membership while an event takes long (retries, pauses). */
  readonly heartbeat: () => Promise<void>;
}

/** The final outcome of one delivery (one rule applied to one event). */
export type DeliveryOutcome =
  'sent' | 'dead-lettered' | 'skipped' | 'in-doubt' | 'resolved' | 'expired' | 'suppressed';

/** The idempotency key of each rule an event matched, and whether the event is a replay (REPLAY_HEADERS). */
export interface EventKeys {
  readonly keys: () => Readonly<Record<string, string>>;
  readonly replay: Replay | undefined;
}

/** One delivery (one rule applied to one event), as the attempt needs it. */
export interface Delivery {
  readonly message: InboundMessage;
  readonly rule: Rule;
  readonly log: Logger;
  readonly ctx: EventContext;
  readonly keys: EventKeys;
}

/** One dead-letter write: what failed, where, for which rule (none: the whole event), and the keys to replay it by. */
export interface DeadLetter {
  readonly message: InboundMessage;
  readonly error: BridgeError;
  readonly stage: Stage;
  readonly log: Logger;
  readonly ctx: EventContext;
  readonly rule?: string;
  /** Genesys calls made for it, all runs together. */
  readonly attempts?: number;
  readonly idempotencyKey?: string;
  readonly keys?: EventKeys;
}

export interface AttemptDeps {
  readonly genesys: GenesysSender;
  /** The sender of a rule that names a connection of the rules file; absent: every rule sends through `genesys`. */
  readonly senderFor?: (rule: Rule) => GenesysSender;
  /** Only its write is used: a test hands a fake. */
  readonly deadLetters: Pick<DeadLetterWriter, 'write'>;
  readonly health: Health;
  readonly retryPolicy: RetryPolicy;
  readonly metrics?: Metrics;
  /** The delivery ledger, consulted before every send (docs/deliveries.md). Absent: every event is sent. */
  readonly ledger?: DeliveryGate;
  /** The stand-in for a recipient in logs and the ledger (keyed with RECIPIENT_HASH_KEY). */
  readonly recipientHash: RecipientHasher;
  /** Read when a dead letter is told to the outcome listener (the rule's action). */
  readonly rules: () => RuleSet;
  /** Told of each delivery's final outcome (outcome topic, status checks). */
  readonly outcomes?: OutcomeListener;
  /** Consulted before a claim: the rule's maxEventAge and the suppression list (delivery/guards.ts). */
  readonly guards?: DeliveryGuards;
  /** Asks Genesys about a delivery an earlier run left pending, before calling it in doubt. */
  readonly resolver?: InDoubtResolver;
}

/**
 * One delivery attempt: consult the ledger, claim, call Genesys, retry or pause, record the outcome; and the
 * dead-letter write that ends a delivery no retry can fix. The pipeline decides the order of the stages around it.
 */
export class DeliveryAttempts {
  readonly #deps: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
  }

  /** The delivery's idempotency key could not be rendered: dead-lettered, under the event's default key. */
  async keyFailed(delivery: Delivery, thrown: unknown): Promise<DeliveryOutcome> {
    const { message, rule, log, ctx, keys } = delivery;
    const gate = this.#deps.ledger;
    const originalKey = keys.replay?.idempotencyKeys[rule.name];
    // A defect the event triggers (not a BridgeError) dead-letters it too: its partition must not stop on it.
    const error = isBridgeError(thrown) ? thrown : unexpected(thrown, 'render', log);
    // Without its key the delivery is recorded under the event's coordinates: a redelivery finds it there.
    const fallback = gate?.ref(message, rule.name, originalKey);
    if (gate && fallback) {
      const known = await this.recording(() => gate.lookup(fallback), log, ctx);
      // `failed`: the dead-letter write is still owed; it is made below, with the same reason.
      if (known && known.state !== 'pending' && known.state !== 'failed') {
        return this.#skip(fallback, known, log, ctx);
      }
    }
    const stage = 'render';
    await this.deadLetter({
      message,
      error,
      stage,
      rule: rule.name,
      log,
      ctx,
      idempotencyKey: originalKey,
      keys,
    });
    return 'dead-lettered';
  }

  /** Where the ledger keeps this delivery (under `key`, else the event's default key); undefined without a ledger. */
  ref(message: InboundMessage, rule: string, key: string | undefined): LedgerRef | undefined {
    return this.#deps.ledger?.ref(message, rule, key);
  }

  /**
   * What the ledger already knows of this delivery, checked before rendering so that a redelivered dead letter is
   * not dead-lettered again: its outcome, or undefined when it is to be made.
   */
  async known(delivery: Delivery, ref: LedgerRef | undefined): Promise<DeliveryOutcome | undefined> {
    const gate = this.#deps.ledger;
    if (!gate || !ref) return undefined;
    const { rule, log, ctx, keys } = delivery;
    // A replay for this rule: its dead-lettered (or failed) record is claimed again rather than skipped.
    const replaying = keys.replay?.rule === rule.name;
    const known = await this.recording(() => gate.lookup(ref), log, ctx);
    // In doubt, with a resolver: claimed below and asked about again (an earlier run may have died while asking).
    const askAgain = known?.state === 'in-doubt' && this.#deps.resolver !== undefined;
    if (known && known.state !== 'pending' && !askAgain && !(replaying && isFailure(known))) {
      return this.#settleKnown(delivery, ref, known);
    }
    return undefined;
  }

  /** The request could not be rendered or checked: the event's fault (or a defect it triggers), dead-lettered. */
  async renderFailed(delivery: Delivery, key: string | undefined, thrown: unknown): Promise<'dead-lettered'> {
    const { message, rule, log, ctx, keys } = delivery;
    // A BridgeError is the event's fault. Anything else is a defect that this event triggers: dead-lettered as
    // EVENT_PREPARE_FAILED rather than crashing the consumer, which would restart on the same event for ever.
    const error = isBridgeError(thrown) ? thrown : unexpected(thrown, 'render', log);
    await this.deadLetter({
      message,
      error,
      stage: 'render',
      rule: rule.name,
      log,
      ctx,
      idempotencyKey: key,
      keys,
    });
    return 'dead-lettered';
  }

  /** Claims the delivery in the ledger, then calls Genesys until the outcome is final. */
  async attempt(
    delivery: Delivery,
    key: string | undefined,
    ref: LedgerRef | undefined,
    rendered: RenderedAction,
    request: GenesysRequest,
  ): Promise<DeliveryOutcome> {
    const { message, rule, log, ctx, keys } = delivery;
    const gate = this.#deps.ledger;
    const recipient = this.#deps.recipientHash(recipientOf(rendered));
    const guarded = await this.#deps.guards?.check(rule, message, recipient);
    if (guarded) {
      if (gate && ref) {
        const info = { reason: guarded.reason, recipientHash: recipient };
        await this.recording(() => gate.markOutcome(ref, guarded.state, info), log, ctx);
      }
      this.#emit(guarded.state, message, rule, key, { recipientHash: recipient, reason: guarded.reason });
      log.info({ outcome: guarded.state, recipient, reason: guarded.reason }, 'delivery');
      return guarded.state;
    }
    let attemptsBefore = 0;
    if (gate && ref) {
      const replaying = keys.replay?.rule === rule.name;
      const claim = await this.recording(
        () => gate.claim(ref, rule.delivery, recipient, replaying),
        log,
        ctx,
      );
      if (!claim.proceed && claim.outcome === 'skipped')
        return this.#settleKnown(delivery, ref, claim.record);
      if (!claim.proceed) {
        const { record } = claim;
        const reconciled = await this.#reconcile(delivery, key, ref, record, recipient);
        if (reconciled === 'resolved') return 'resolved';
        // Known to be in doubt since an earlier run, and still not settled: a redelivery, counted as a skip.
        if (reconciled === undefined && claim.earlier) return this.#skip(ref, record, log, ctx);
        if (reconciled === undefined) {
          this.#emit('in-doubt', message, rule, key, { recipientHash: recipient, reason: record.reason });
          const { idempotencyKey } = ref;
          log.warn(
            { outcome: 'in-doubt', idempotencyKey, state: record.state, recipient, reason: record.reason },
            'delivery',
          );
          return 'in-doubt';
        }
        attemptsBefore = reconciled.attempts;
      } else {
        attemptsBefore = claim.attemptsBefore;
        if (claim.tookOver)
          log.warn(
            { idempotencyKey: ref.idempotencyKey },
            'at-least-once: sending again a delivery an earlier run left unfinished',
          );
      }
    }
    return this.#call({ delivery, key, rendered, request, recipient, ref, attemptsBefore });
  }

  /** Calls Genesys, retrying or pausing as the failure says, until sent or dead-lettered. */
  async #call(call: Call): Promise<'sent' | 'dead-lettered'> {
    const { delivery, request, ref } = call;
    const { rule, log, ctx } = delivery;
    const gate = this.#deps.ledger;
    const sender = this.#deps.senderFor?.(rule) ?? this.#deps.genesys;
    // Whether a call may have reached Genesys: then a stop must leave the claim pending (in doubt), not forget it.
    let mayHaveReached = false;
    const firstTryAtMs = Date.now();
    const tally: Tally = { correlationIds: [], waitedMs: 0 };
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
        response = await sender.send(request, ctx.callSignal, { waitSignal: ctx.waitSignal, heartbeat });
      } catch (error) {
        // An aborted call may have reached Genesys: the claim stays pending, to be resolved by the rule's policy.
        if (error instanceof ShutdownError || (heartbeatError !== undefined && error === heartbeatError)) {
          throw error;
        }
        if (isBridgeError(error)) tally.correlationIds.push(...error.correlationIds);
        mayHaveReached ||= !certainlyNotDelivered(error);
        const outcome = decide(error, attempt, this.#deps.retryPolicy, Date.now() - firstTryAtMs);
        if (outcome.kind === 'dead-letter') {
          // decide() dead-letters only BridgeErrors.
          return this.#refused(call, error as BridgeError, attempt, tally);
        }
        if (outcome.kind === 'retry')
          this.#deps.metrics?.retries.inc({ rule: rule.name, code: outcome.code });
        try {
          await this.waitOut(outcome, attempt, log, ctx);
        } catch (waitError) {
          if (gate && ref && !mayHaveReached) await gate.release(ref).catch(() => {});
          throw waitError;
        }
        continue;
      }
      tally.correlationIds.push(...response.correlationIds);
      tally.waitedMs += response.waitedMs;
      await this.#sent(call, response, attempt, tally);
      return 'sent';
    }
  }

  async #refused(call: Call, error: BridgeError, attempt: number, tally: Tally): Promise<'dead-lettered'> {
    const { delivery, key, attemptsBefore } = call;
    const { message, rule, log, ctx, keys } = delivery;
    log.warn({ correlationIds: tally.correlationIds }, 'Genesys refused the delivery');
    await this.deadLetter({
      message,
      error,
      stage: 'deliver',
      rule: rule.name,
      log,
      ctx,
      attempts: attemptsBefore + attempt,
      idempotencyKey: key,
      keys,
    });
    return 'dead-lettered';
  }

  async #sent(
    call: Call,
    response: Awaited<ReturnType<GenesysSender['send']>>,
    attempt: number,
    tally: Tally,
  ): Promise<void> {
    const { delivery, key, rendered, recipient, ref, attemptsBefore } = call;
    const { message, rule, log, ctx } = delivery;
    const gate = this.#deps.ledger;
    if (this.#deps.health.resume()) log.info('Genesys accepts calls again: delivery resumed');
    const conversationId = genesysIdOf(response.body);
    const { correlationId } = response;
    trace.getActiveSpan()?.setAttributes({
      'genesys.conversation.id': conversationId ?? '',
      'genesys.correlation_id': correlationId ?? '',
      'geb.recipient.hash': recipient,
      'geb.attempts': attemptsBefore + attempt,
    });
    if (gate && ref) {
      const info = { genesysId: conversationId, correlationId, attempts: attemptsBefore + attempt };
      await this.recording(() => gate.markSent(ref, info), log, ctx);
    }
    this.#emit('sent', message, rule, key, {
      conversationId,
      messageId: rendered.kind === 'agentlessMessage' ? genesysMessageIdOf(response.body) : undefined,
      correlationId,
      recipientHash: recipient,
    });
    log.info(
      {
        outcome: 'sent',
        conversationId,
        correlationId,
        correlationIds: tally.correlationIds,
        rateLimitWaitMs: tally.waitedMs,
        recipient,
        attempts: attempt,
      },
      'delivery',
    );
  }

  /**
   * A delivery the gate just found in doubt: asks Genesys (delivery/in-doubt-resolver.ts). Sent: recorded `sent` with
   * its conversation id ('resolved'). Certainly not sent: taken back to pending for this run, which sends it (the
   * returned record). Otherwise it stays in doubt, with the reason added (undefined).
   */
  async #reconcile(
    delivery: Delivery,
    key: string | undefined,
    ref: LedgerRef,
    record: DeliveryRecord,
    recipient: string,
  ): Promise<'resolved' | DeliveryRecord | undefined> {
    const { resolver, ledger: gate } = this.#deps;
    if (!resolver || !gate) return undefined;
    const { message, rule, log, ctx } = delivery;
    const waits = { waitSignal: ctx.waitSignal, heartbeat: ctx.heartbeat };
    const resolution = await resolver.resolve(record, rule.action.kind, waits);
    // Compare-and-set: of two claimants (a rebalance), only one acts on the resolution.
    const mine = await this.recording(() => gate.reclaimInDoubt(ref, recipient), log, ctx);
    if (!mine) return undefined;
    const { idempotencyKey } = ref;
    if (resolution.kind === 'sent') {
      const { conversationId } = resolution;
      const info = { genesysId: conversationId, attempts: record.attempts };
      await this.recording(() => gate.markSent(ref, info), log, ctx);
      const details = { conversationId, recipientHash: recipient, reason: resolution.reason };
      this.#emit('resolved', message, rule, key, details);
      log.info({ outcome: 'resolved', idempotencyKey, conversationId }, 'delivery');
      return 'resolved';
    }
    if (resolution.kind === 'not-sent') {
      log.warn({ idempotencyKey, reason: resolution.reason }, 'in doubt, not sent: sending now, once');
      return mine;
    }
    const reason = `${record.reason ?? 'in doubt'}; ${resolution.reason}`;
    await this.recording(() => gate.markInDoubt(ref, reason), log, ctx);
    log.warn({ idempotencyKey, reason: resolution.reason }, 'in doubt: Genesys could not settle it');
    return undefined;
  }

  /** Tells the outcome listener (outcome topic, status checks); never fails the delivery. */
  #emit(
    outcome: OutcomeKind,
    message: InboundMessage,
    rule: Rule | undefined,
    idempotencyKey: string | undefined,
    details: OutcomeDetails,
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

  /**
   * A redelivery of a delivery the ledger knows. A `failed` record still owes its dead-letter write (an earlier run
   * stopped while the write kept failing): it is made now, with the recorded reason and no new Genesys call, and the
   * offset is committed only once the dead-letter topic has the event. Any other state is final: skipped.
   */
  async #settleKnown(
    delivery: Delivery,
    ref: DeliveryRef,
    record: DeliveryRecord,
  ): Promise<'skipped' | 'dead-lettered'> {
    const { message, log, ctx, keys } = delivery;
    if (record.state !== 'failed') return this.#skip(ref, record, log, ctx);
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
    await this.deadLetter({
      message,
      error,
      stage,
      rule: ref.rule,
      log,
      ctx,
      attempts: record.attempts > 0 ? record.attempts : undefined,
      idempotencyKey: ref.idempotencyKey,
      keys,
    });
    return 'dead-lettered';
  }

  /** A redelivery of a delivery whose outcome is final: counted on its record, not sent or dead-lettered again. */
  async #skip(ref: DeliveryRef, record: DeliveryRecord, log: Logger, ctx: EventContext): Promise<'skipped'> {
    const gate = this.#deps.ledger;
    if (gate) await this.recording(() => gate.markSkipped(ref), log, ctx);
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
  async recording<T>(operation: () => Promise<T>, log: Logger, ctx: EventContext): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        const delayMs = backoffMs(attempt, this.#deps.retryPolicy);
        log.error(
          { code: isBridgeError(error) ? error.code : 'INTERNAL', attempt, retryInMs: delayMs },
          `delivery ledger unavailable, retrying: ${(error as Error).message}`,
        );
        await waitOut(delayMs, ctx);
      }
    }
  }

  /** Waits out a retry's backoff, or a pause's probe interval (pausing consumption first). */
  async waitOut(
    outcome: Exclude<FailureOutcome, { kind: 'dead-letter' }>,
    attempt: number,
    log: Logger,
    ctx: EventContext,
  ): Promise<void> {
    if (outcome.kind === 'pause') {
      if (this.#deps.health.pause(outcome.code, outcome.reason)) {
        log.error(
          { code: outcome.code, probeInMs: outcome.probeInMs },
          `delivery paused: ${outcome.reason}. Nothing is committed or dead-lettered until this is fixed; probing again every ${Math.round(outcome.probeInMs / 1000)} s`,
        );
      }
      await waitOut(outcome.probeInMs, ctx);
      return;
    }
    log.warn(
      { code: outcome.code, attempt, retryInMs: outcome.delayMs },
      `delivery will be retried: ${outcome.reason}`,
    );
    await waitOut(outcome.delayMs, ctx);
  }

  /** Dead-letters the event; retries the write itself until it succeeds, since dropping it would lose the event. */
  async deadLetter(letter: DeadLetter): Promise<void> {
    const { message, error, stage, rule, log, ctx, attempts, idempotencyKey, keys } = letter;
    const { code, message: reason } = error;
    const gate = this.#deps.ledger;
    const ref: (DeliveryRef & EventOrigin) | undefined =
      rule === undefined ? undefined : gate?.ref(message, rule, idempotencyKey);
    const failure = { errorCode: code, reason, correlationId: error.correlationId, attempts };
    // Recorded before the write too, so that a crash in between still leaves the final error in the history.
    if (gate && ref) await this.recording(() => gate.markFailed(ref, failure), log, ctx);
    for (let attempt = 1; ; attempt++) {
      try {
        const topic = await this.#deps.deadLetters.write(message, {
          code,
          message: reason,
          stage,
          rule,
          ...(keys && { idempotencyKeys: keys.keys() }),
        });
        this.#deps.metrics?.deadLetters.inc({ code, stage });
        if (gate && ref) await this.recording(() => gate.markDeadLettered(ref, failure), log, ctx);
        const dead = rule === undefined ? undefined : this.#deps.rules().rules.find((r) => r.name === rule);
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
        await waitOut(delayMs, ctx);
      }
    }
  }
}

/** What an outcome record says besides the outcome (none of it personal data). */
interface OutcomeDetails {
  readonly conversationId?: string | undefined;
  readonly messageId?: string | undefined;
  readonly correlationId?: string | undefined;
  readonly recipientHash?: string | undefined;
  readonly errorCode?: string | undefined;
  readonly reason?: string | undefined;
}

/** A delivery's place in the ledger. */
export type LedgerRef = DeliveryRef & EventOrigin;

/** One delivery's Genesys calls, after its claim. */
interface Call {
  readonly delivery: Delivery;
  readonly key: string | undefined;
  readonly rendered: RenderedAction;
  readonly request: GenesysRequest;
  readonly recipient: string;
  readonly ref: (DeliveryRef & EventOrigin) | undefined;
  /** Calls made for it by earlier runs. */
  readonly attemptsBefore: number;
}

/** Every attempt's ININ-Correlation-Id (what Genesys support asks for) and the time spent waiting for budget. */
interface Tally {
  readonly correlationIds: string[];
  waitedMs: number;
}

/**
 * An unexpected error while an event was prepared (decoded, matched, its keys or request rendered), as the event's
 * dead-letter reason. The reason and the log carry the error's type and stack frames only: a message of an arbitrary
 * error may quote the event's data.
 */
export function unexpected(error: unknown, stage: Stage, log: Logger): BridgeError {
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
