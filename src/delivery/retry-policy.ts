export interface RetryPolicy {
  /** First backoff; doubles with each attempt. */
  readonly baseDelayMs: number;
  /** Backoff never grows past this. */
  readonly maxDelayMs: number;
  /** How often a paused delivery probes whether the systemic cause is gone. */
  readonly pauseProbeMs: number;
  /**
   * Tries of one delivery after which a transient failure (5xx, timeout, unreachable, no token) is taken as systemic:
   * the bridge pauses instead of retrying on. 429s never count: they only say "slower". Absent: no bound.
   */
  readonly maxAttempts?: number;
  /** Likewise, once this long has passed since the delivery's first try. Absent: no bound. */
  readonly maxAgeMs?: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  pauseProbeMs: 15_000,
  maxAttempts: 10,
  maxAgeMs: 5 * 60_000,
});

/** Whether a delivery that has been tried `attempt` times over `ageMs` is past the policy's retry bound. */
export function beyondRetryBound(attempt: number, ageMs: number, policy: RetryPolicy): boolean {
  return (
    (policy.maxAttempts !== undefined && attempt >= policy.maxAttempts) ||
    (policy.maxAgeMs !== undefined && ageMs >= policy.maxAgeMs)
  );
}

/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): replicas that
 * failed together do not retry together. `attempt` counts from 1.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
