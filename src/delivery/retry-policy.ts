export interface RetryPolicy {
  /** First backoff; doubles with each attempt. */
  readonly baseDelayMs: number;
  /** Backoff never grows past this. */
  readonly maxDelayMs: number;
  /** How often a paused delivery probes whether the systemic cause is gone. */
  readonly pauseProbeMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  pauseProbeMs: 15_000,
});

/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): replicas that
 * failed together do not retry together. `attempt` counts from 1.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
