import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { isBridgeError, type ErrorCode } from '../../errors.js';
import type {
  DeliveryRecord,
  DeliveryRef,
  DownstreamState,
  EventOrigin,
  FailureInfo,
  Ledger,
  OutcomeInfo,
  SentInfo,
  SkippedState,
} from './ledger.js';

/**
 * The consumed record a delivery comes from, as the gate reads it (src/kafka/message.ts's InboundMessage satisfies
 * it): declared here so that the ledger does not depend on the Kafka layer.
 */
export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;
}

/** A rule's answer to a pending record left by an earlier run (the rules file's `delivery`). */
export type DeliveryPolicy = 'at-least-once' | 'at-most-once';

/** What the ledger says about a delivery about to be made. */
export type Claim =
  /** Call Genesys. `attemptsBefore`: calls made for it by earlier runs. */
  | { readonly proceed: true; readonly attemptsBefore: number; readonly tookOver: boolean }
  /** Do not call Genesys: it is final already (`duplicate`), or in doubt and the policy is at-most-once. */
  | {
      readonly proceed: false;
      readonly outcome: 'skipped' | 'in-doubt';
      readonly record: DeliveryRecord;
      /** In doubt since an earlier run: if Genesys still cannot settle it, this redelivery is only a skip. */
      readonly earlier?: boolean;
    };

/**
 * The ledger as the pipeline consults it: derives the idempotency key and applies the rule's policy to a pending
 * record left by an earlier run. One instance per bridge process; `owner` tells its claims apart from others'.
 */
export class DeliveryGate {
  readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;

  constructor(
    readonly ledger: Ledger,
    private readonly keyHeader: string | undefined,
  ) {}

  /** Default: the event's coordinates, unique per event and stable across redeliveries; or LEDGER_KEY_HEADER's value. */
  idempotencyKey(message: SourceRecord): string {
    if (this.keyHeader !== undefined) {
      const value = headerValue(message, this.keyHeader);
      if (value !== undefined && value !== '') return value;
    }
    return `${message.topic}/${message.partition}/${message.offset}`;
  }

  /** `idempotencyKey`: the rule's own key (its `idempotencyKey` template rendered), overriding the default. */
  ref(message: SourceRecord, rule: string, idempotencyKey?: string): DeliveryRef & EventOrigin {
    return {
      rule,
      idempotencyKey: idempotencyKey ?? this.idempotencyKey(message),
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: message.key === null ? null : message.key.toString('utf8'),
      traceId: traceIdOf(message),
    };
  }

  /** The record of a delivery, if any: checked before rendering, so that a redelivered outcome is not made again. */
  lookup(ref: DeliveryRef): Promise<DeliveryRecord | undefined> {
    return this.ledger.lookup(ref);
  }

  markSent(ref: DeliveryRef, info: SentInfo): Promise<void> {
    return this.ledger.markSent(ref, info);
  }

  markSkipped(ref: DeliveryRef): Promise<void> {
    return this.ledger.markSkipped(ref);
  }

  markFailed(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.ledger.markFailed(ref, info);
  }

  markDeadLettered(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void> {
    return this.ledger.markDeadLettered(ref, info);
  }

  /** What became of a send, or a delivery skipped before its claim (expired, suppressed). */
  markOutcome(
    ref: DeliveryRef & EventOrigin,
    state: DownstreamState | SkippedState,
    info: OutcomeInfo,
  ): Promise<boolean> {
    return this.ledger.markOutcome(ref, state, info);
  }

  /** Leaves a record this process holds in doubt, with the reason reconciliation could not settle it. */
  markInDoubt(ref: DeliveryRef, reason: string): Promise<DeliveryRecord | undefined> {
    return this.ledger.markInDoubt(ref, this.owner, reason);
  }

  /** Takes an in-doubt record back to pending for this process (it was certainly never sent): compare-and-set. */
  reclaimInDoubt(ref: DeliveryRef & EventOrigin, recipientHash: string): Promise<DeliveryRecord | undefined> {
    return this.ledger.reclaimInDoubt({ ...ref, recipientHash, owner: this.owner });
  }

  /** Forgets this process's claim: the call certainly did not reach Genesys, so a restart sends it afresh. */
  release(ref: DeliveryRef): Promise<void> {
    return this.ledger.release(ref, this.owner);
  }

  /**
   * `replay`: the event is a replay from the dead-letter topic (`geb dlq replay`) for this delivery: a final failure
   * is claimed again (reopened) rather than skipped. An in-doubt record is handed back in doubt, to be reconciled with
   * Genesys again; anything else final (sent, dead-lettered) is skipped.
   */
  async claim(
    ref: DeliveryRef & EventOrigin,
    policy: DeliveryPolicy,
    recipientHash: string,
    replay = false,
  ): Promise<Claim> {
    // A compare-and-set can lose to another replica; the loop re-reads what won. Three rounds are plenty: each
    // loss means the record changed state, and every state but pending ends the loop.
    for (let round = 0; ; round++) {
      const input = { ...ref, recipientHash, owner: this.owner };
      const { claimed, record } = await this.ledger.begin(input);
      if (claimed) return { proceed: true, attemptsBefore: 0, tookOver: false };
      if (replay && isFailure(record)) {
        const reopened = await this.ledger.reopen(input, record.owner);
        if (reopened) return { proceed: true, attemptsBefore: record.attempts, tookOver: false };
      } else if (record.state === 'in-doubt') {
        // Asked about again: the run that marked it may have died before Genesys was asked (a crash during the
        // reconciliation), and the answer may be known now. Reconciling is a compare-and-set, safe to repeat.
        return { proceed: false, outcome: 'in-doubt', record, earlier: true };
      } else if (record.state !== 'pending') {
        return { proceed: false, outcome: 'skipped', record };
      } else if (policy === 'at-least-once') {
        const taken = await this.ledger.takeOver(input, record.owner);
        if (taken) return { proceed: true, attemptsBefore: record.attempts, tookOver: true };
      } else {
        const reason = `a run of ${record.owner ?? 'an unknown bridge'} claimed it at ${record.updatedAt} and did not record an outcome: it may or may not have been sent`;
        const marked = await this.ledger.markInDoubt(ref, record.owner, reason);
        if (marked) return { proceed: false, outcome: 'in-doubt', record: marked };
      }
      if (round >= 2) throw new Error(`ledger: ${ref.rule} ${ref.idempotencyKey} keeps changing under us`);
    }
  }
}

/** A final failure: what a replay from the dead-letter topic may claim again. */
export function isFailure(record: DeliveryRecord): boolean {
  return record.state === 'dead-lettered' || record.state === 'failed';
}

/**
 * Failures after which the call certainly did not reach Genesys (refused before or at the door). A stop during the
 * backoff that follows only these may forget the claim, so the restart sends it instead of calling it in doubt.
 */
export function certainlyNotDelivered(error: unknown): boolean {
  return isBridgeError(error) && NOT_DELIVERED.has(error.code);
}

const NOT_DELIVERED = new Set<ErrorCode>([
  'GENESYS_RATE_LIMITED',
  'TOKEN_UNAVAILABLE',
  'GENESYS_INVALID_CLIENT',
  'GENESYS_TOKEN_REFUSED',
  'GENESYS_UNAUTHORIZED',
  'GENESYS_FORBIDDEN',
]);

/**
 * The trace the delivery belongs to: the active span's when tracing is on, else the producer's W3C `traceparent`
 * header (which the consumer span continues), so the record can be opened in the tracing UI either way.
 */
export function traceIdOf(message: SourceRecord): string | undefined {
  const active = trace.getActiveSpan()?.spanContext();
  if (active && isSpanContextValid(active)) return active.traceId;
  const parent = headerValue(message, 'traceparent');
  const match =
    parent === undefined ? null : /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(parent.trim());
  return match?.[1] !== undefined && !/^0+$/.test(match[1]) ? match[1] : undefined;
}

function headerValue(message: SourceRecord, name: string): string | undefined {
  const raw = message.headers[name];
  const first = Array.isArray(raw) ? raw[0] : raw;
  return first === undefined ? undefined : first.toString();
}
