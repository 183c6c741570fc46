import { isBridgeError, type ErrorCode } from '../errors.js';
import { backoffMs, beyondRetryBound, type RetryPolicy } from './retry-policy.js';

/** What happens next to a delivery that failed. */
export type FailureOutcome =
  | {
      readonly kind: 'retry';
      readonly delayMs: number;
      readonly code: ErrorCode | 'INTERNAL';
      readonly reason: string;
    }
  | { readonly kind: 'dead-letter'; readonly code: ErrorCode; readonly reason: string }
  | { readonly kind: 'pause'; readonly probeInMs: number; readonly code: ErrorCode; readonly reason: string };

/**
 * The one place that turns a failure into what the pipeline does about it. `attempt` is the number of tries so far.
 * Anything that is not a BridgeError is a bug or an unforeseen fault: it is retried, never dead-lettered, so that
 * a defect cannot empty a topic into the dead-letter queue.
 *
 * `ageMs` is how long ago the delivery's first try started. A transient failure that outlives the policy's bound
 * (attempts or age) is no longer taken as passing: Genesys or its token endpoint being unreachable that long is
 * systemic, so it pauses, and still never dead-letters. A 429 is exempt: it asks for patience, not an alarm.
 */
export function decide(error: unknown, attempt: number, policy: RetryPolicy, ageMs = 0): FailureOutcome {
  if (!isBridgeError(error)) {
    return { kind: 'retry', delayMs: backoffMs(attempt, policy), code: 'INTERNAL', reason: String(error) };
  }
  const { code, message } = error;
  switch (error.disposition) {
    case 'dead-letter':
      return { kind: 'dead-letter', code, reason: message };
    case 'pause':
    case 'fatal':
      return { kind: 'pause', probeInMs: policy.pauseProbeMs, code, reason: message };
    case 'retry': {
      if (code !== 'GENESYS_RATE_LIMITED' && beyondRetryBound(attempt, ageMs, policy)) {
        const bound = [
          policy.maxAttempts !== undefined ? `${policy.maxAttempts} attempts` : undefined,
          policy.maxAgeMs !== undefined ? `${Math.round(policy.maxAgeMs / 1000)} s` : undefined,
        ]
          .filter(Boolean)
          .join(' or ');
        return {
          kind: 'pause',
          probeInMs: policy.pauseProbeMs,
          code,
          reason: `still failing past the retry bound (${bound}), taken as systemic: ${message}`,
        };
      }
      const backoff = backoffMs(attempt, policy);
      const delayMs = error.retryAfterMs !== undefined ? Math.max(error.retryAfterMs, backoff / 4) : backoff;
      return { kind: 'retry', delayMs, code, reason: message };
    }
  }
}
