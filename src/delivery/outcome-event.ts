import type { ActionKind } from '../genesys/rate-limiter.js';

/**
 * What became of one delivery (one rule applied to one event), as the outcome topic carries it
 * (schemas/outcome.schema.json) and as the status checker is told of a send. Free of personal data by construction:
 * the recipient is a hash, and there is no field for an address or a body.
 */
export type OutcomeKind =
  | 'sent'
  | 'delivered'
  | 'bounced'
  | 'failed-downstream'
  | 'unknown'
  | 'dead-lettered'
  | 'in-doubt'
  | 'resolved'
  | 'expired'
  | 'suppressed';

export const OUTCOME_KINDS: readonly OutcomeKind[] = [
  'sent',
  'delivered',
  'bounced',
  'failed-downstream',
  'unknown',
  'dead-lettered',
  'in-doubt',
  'resolved',
  'expired',
  'suppressed',
];

export interface OutcomeEvent {
  readonly outcome: OutcomeKind;
  /** ISO-8601: when the bridge learnt it. */
  readonly at: string;
  /** The rule; absent for an event dead-lettered before any rule applied (undecodable). */
  readonly rule?: string | undefined;
  readonly action?: ActionKind | undefined;
  readonly idempotencyKey?: string | undefined;
  /** The source event's coordinates and key: the outcome record is keyed like it. */
  readonly event: {
    readonly topic: string;
    readonly partition: number;
    readonly offset: string;
    readonly key: string | null;
  };
  readonly genesys?: {
    readonly conversationId?: string | undefined;
    /** An agentless message's id (its status is looked up by it). */
    readonly messageId?: string | undefined;
    readonly correlationId?: string | undefined;
  };
  readonly traceId?: string | undefined;
  /** The recipient's hash, keyed with RECIPIENT_HASH_KEY (telemetry/logger.ts recipientHasher). */
  readonly recipientHash?: string | undefined;
  readonly errorCode?: string | undefined;
  /** Free of personal data. */
  readonly reason?: string | undefined;
}

/** Told of every outcome; must not throw or block the delivery (it is called on the delivery's path). */
export type OutcomeListener = (event: OutcomeEvent) => void;

/** Several listeners as one; one that throws does not keep the others from hearing. */
export function fanOut(...listeners: readonly (OutcomeListener | undefined)[]): OutcomeListener {
  const present = listeners.filter((l): l is OutcomeListener => l !== undefined);
  return (event) => {
    for (const listener of present) {
      try {
        listener(event);
      } catch {
        // A listener's own failure is its to report; the delivery's outcome stands.
      }
    }
  };
}
