/**
 * The delivery ledger: one record per (rule, idempotency key), consulted before every send and kept as the delivery
 * history. Genesys has no idempotency key and an email cannot be unsent, so this is what turns Kafka's at-least-once
 * redelivery into (effectively) once toward Genesys. See docs/deliveries.md.
 */

/**
 * - `pending`: claimed, the Genesys call is about to be or being made. Left behind only by a crash (or a stop while
 *   a call was in flight): then nobody knows whether Genesys got it.
 * - `sent`: Genesys accepted it (its ids are kept).
 * - `failed`: final failure (error code kept); the event is being dead-lettered.
 * - `dead-lettered`: final failure, written to the dead-letter topic.
 * - `in-doubt`: a pending record of an earlier run, resolved by the `at-most-once` policy: not sent again.
 * What became of a `sent` one, from the delivery status checks (delivery/status-checker.ts):
 * - `delivered`: Genesys reports it delivered. - `bounced`: an email Genesys reports bounced.
 * - `failed-downstream`: Genesys reports the delivery failed (its error code and a message free of personal data).
 * - `unknown`: the checks could not tell (no status field, no permission, no answer): the reason says why.
 * Skipped before any send (guards.ts): `expired` (older than the rule's maxEventAge), `suppressed` (the recipient
 * bounced hard recently).
 */
export type DeliveryState =
  'pending' | 'sent' | 'failed' | 'dead-lettered' | 'in-doubt' | DownstreamState | SkippedState;

export type DownstreamState = 'delivered' | 'bounced' | 'failed-downstream' | 'unknown';
export type SkippedState = 'expired' | 'suppressed';

/** The states markOutcome may move a record out of: a downstream status follows only an acceptance. */
export const OUTCOME_FROM: Readonly<
  Record<DownstreamState | SkippedState, readonly (DeliveryState | 'none')[]>
> = {
  delivered: ['sent', 'unknown'],
  bounced: ['sent', 'unknown'],
  'failed-downstream': ['sent', 'unknown'],
  unknown: ['sent'],
  expired: ['none', 'pending'],
  suppressed: ['none', 'pending'],
};

export const DELIVERY_STATES: readonly DeliveryState[] = [
  'pending',
  'sent',
  'failed',
  'dead-lettered',
  'in-doubt',
  'delivered',
  'bounced',
  'failed-downstream',
  'unknown',
  'expired',
  'suppressed',
];

export interface DeliveryRef {
  readonly rule: string;
  readonly idempotencyKey: string;
}

/** Where the event came from, and the trace that carries it. */
export interface EventOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** The Kafka message key, if any. */
  readonly key: string | null;
  readonly traceId?: string | undefined;
}

export interface DeliveryRecord extends DeliveryRef, EventOrigin {
  readonly state: DeliveryState;
  /** The recipient's hash (telemetry/logger.ts recipientHasher); never the address itself. */
  readonly recipientHash?: string | undefined;
  /** Genesys calls made for this delivery, over every run. */
  readonly attempts: number;
  /** The Genesys id that proves acceptance: conversationId, message id or contact id. */
  readonly genesysId?: string | undefined;
  /** ININ-Correlation-Id of the accepting (or final failing) call. */
  readonly correlationId?: string | undefined;
  readonly errorCode?: string | undefined;
  /** Why it failed, was dead-lettered or is in doubt; free of personal data (BridgeError messages are). */
  readonly reason?: string | undefined;
  /** How many redeliveries of an already-final delivery were skipped. */
  readonly skipped: number;
  /** The bridge process that claimed it. */
  readonly owner?: string | undefined;
  /** ISO-8601. */
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface BeginInput extends DeliveryRef, EventOrigin {
  readonly recipientHash?: string | undefined;
  readonly owner: string;
}

/** `claimed`: this caller owns the pending record and may call Genesys. Otherwise `record` is what is there. */
export interface BeginResult {
  readonly claimed: boolean;
  readonly record: DeliveryRecord;
}

export interface SentInfo {
  readonly genesysId?: string | undefined;
  readonly correlationId?: string | undefined;
  readonly attempts: number;
}

export interface FailureInfo {
  readonly errorCode: string;
  readonly reason: string;
  readonly correlationId?: string | undefined;
  readonly attempts?: number | undefined;
}

export interface OutcomeInfo {
  readonly errorCode?: string | undefined;
  /** Free of personal data. */
  readonly reason?: string | undefined;
  /** For a record created here (a skipped delivery has no claim). */
  readonly recipientHash?: string | undefined;
}

export interface DeliveryQuery {
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
  /** Matches the Kafka message key or the idempotency key. */
  readonly key?: string;
  readonly rule?: string;
  readonly state?: DeliveryState;
  /** The recipient's hash (telemetry/logger.ts recipientHasher), as recorded. */
  readonly recipientHash?: string;
  /** Only records updated at or after this time. */
  readonly since?: Date;
  /** At most this many, newest first. Default 100. */
  readonly limit?: number;
}

/**
 * Every backend passes test/delivery/ledger/contract.ts. Transitions out of `pending` that resolve a record left by
 * someone else (`takeOver`, `markInDoubt`) are compare-and-set on the owner, so two replicas cannot both win.
 */
export interface Ledger {
  /** A short description for logs: the backend and where it keeps its data (no credentials). */
  readonly description: string;
  /** Claims the delivery: creates a pending record unless one exists, atomically. */
  begin(input: BeginInput): Promise<BeginResult>;
  /**
   * Takes a pending record over from `fromOwner` (at-least-once policy), with the new claimant's owner, trace id and
   * recipient hash; undefined if someone else changed it first.
   */
  takeOver(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined>;
  /**
   * Claims again a final failure (`dead-lettered`, or `failed` with its dead-letter write made) for a replay from the
   * dead-letter topic: back to pending with the new claimant, compare-and-set on the state and `fromOwner`, so that of
   * two replays of the same dead letter one wins; undefined if the record is not a failure of `fromOwner` any more.
   */
  reopen(input: BeginInput, fromOwner: string | undefined): Promise<DeliveryRecord | undefined>;
  /** Resolves a pending record of `fromOwner` as in doubt (at-most-once policy); undefined if it changed. */
  markInDoubt(
    ref: DeliveryRef,
    fromOwner: string | undefined,
    reason: string,
  ): Promise<DeliveryRecord | undefined>;
  markSent(ref: DeliveryRef, info: SentInfo): Promise<void>;
  /** Final failure; creates the record if there is none (a render failure happens before any claim). */
  markFailed(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void>;
  /** The event is on the dead-letter topic; creates the record if there is none. */
  markDeadLettered(ref: DeliveryRef & EventOrigin, info: FailureInfo): Promise<void>;
  /**
   * What became of a send (status checks), or a delivery skipped before its claim (expired, suppressed). Applies only
   * from the states OUTCOME_FROM allows ('none': no record yet, then one is created); returns whether it applied.
   */
  markOutcome(
    ref: DeliveryRef & EventOrigin,
    state: DownstreamState | SkippedState,
    info: OutcomeInfo,
  ): Promise<boolean>;
  /**
   * Takes an `in-doubt` record back to `pending` for `input.owner`, once reconciliation found for certain that it was
   * never sent (delivery/in-doubt-resolver.ts); compare-and-set, so only one claimant sends it. Undefined if it changed.
   */
  reclaimInDoubt(input: BeginInput): Promise<DeliveryRecord | undefined>;
  /** Counts a redelivery that was skipped because the record was already final. */
  markSkipped(ref: DeliveryRef): Promise<void>;
  /** Forgets a pending record of `owner` whose call certainly never reached Genesys (a stop during a backoff). */
  release(ref: DeliveryRef, owner: string): Promise<void>;
  lookup(ref: DeliveryRef): Promise<DeliveryRecord | undefined>;
  query(query: DeliveryQuery): Promise<DeliveryRecord[]>;
  /** Deletes records last updated before `olderThan`; returns how many. */
  expire(olderThan: Date): Promise<number>;
  close(): Promise<void>;
}

export const DEFAULT_QUERY_LIMIT = 100;

/** The in-memory filter both backends' semantics are defined by (the file backend uses it as is). */
export function matchesQuery(record: DeliveryRecord, q: DeliveryQuery): boolean {
  if (q.topic !== undefined && record.topic !== q.topic) return false;
  if (q.partition !== undefined && record.partition !== q.partition) return false;
  if (q.offset !== undefined && record.offset !== q.offset) return false;
  if (q.key !== undefined && record.key !== q.key && record.idempotencyKey !== q.key) return false;
  if (q.rule !== undefined && record.rule !== q.rule) return false;
  if (q.state !== undefined && record.state !== q.state) return false;
  if (q.recipientHash !== undefined && record.recipientHash !== q.recipientHash) return false;
  if (q.since !== undefined && Date.parse(record.updatedAt) < q.since.getTime()) return false;
  return true;
}
