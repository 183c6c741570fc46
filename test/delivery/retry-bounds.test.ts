import { describe, expect, it } from 'vitest';
import { decide } from '../../src/delivery/outcome.js';
import {
  DEFAULT_RETRY_POLICY,
  backoffMs,
  beyondRetryBound,
  type RetryPolicy,
} from '../../src/delivery/retry-policy.js';
import { BridgeError } from '../../src/errors.js';

const policy: RetryPolicy = {
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  pauseProbeMs: 10_000,
  maxAttempts: 5,
  maxAgeMs: 60_000,
};

describe('retry bounds', () => {
  it('are reached by attempts or by age, whichever first; no bound when left out', () => {
    expect(beyondRetryBound(4, 59_999, policy)).toBe(false);
    expect(beyondRetryBound(5, 0, policy)).toBe(true);
    expect(beyondRetryBound(1, 60_000, policy)).toBe(true);
    expect(beyondRetryBound(1_000, 1e9, { baseDelayMs: 1, maxDelayMs: 1, pauseProbeMs: 1 })).toBe(false);
  });

  it('jitter stays within [ceiling/2, ceiling] for every attempt', () => {
    for (let attempt = 1; attempt < 40; attempt++) {
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      for (const r of [0, 0.3, 0.999]) {
        const delay = backoffMs(attempt, policy, () => r);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it.each([
    'GENESYS_UNAVAILABLE',
    'GENESYS_UNREACHABLE',
    'TOKEN_UNAVAILABLE',
    'RATE_LIMIT_STORE_UNAVAILABLE',
  ] as const)('turn a lasting %s into a pause (systemic), never a dead letter', (code) => {
    const error = new BridgeError(code, 'x');
    expect(decide(error, 4, policy, 1_000).kind).toBe('retry');
    const byAttempts = decide(error, 5, policy, 1_000);
    expect(byAttempts).toMatchObject({ kind: 'pause', code, probeInMs: 10_000 });
    expect(byAttempts.reason).toContain('retry bound');
    expect(decide(error, 2, policy, 60_000)).toMatchObject({ kind: 'pause', code });
  });

  it('never pause on 429s, however many: they only ask for patience', () => {
    const limited = new BridgeError('GENESYS_RATE_LIMITED', 'x', { retryAfterMs: 2_000 });
    expect(decide(limited, 500, policy, 3_600_000)).toMatchObject({ kind: 'retry', delayMs: 2_000 });
  });

  it('keep 4xx final and systemic errors paused whatever the attempt', () => {
    expect(decide(new BridgeError('GENESYS_REJECTED', 'x'), 50, policy, 1e9).kind).toBe('dead-letter');
    expect(decide(new BridgeError('GENESYS_FORBIDDEN', 'x'), 1, policy, 0).kind).toBe('pause');
  });

  it('default to 10 attempts or 5 minutes', () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({ maxAttempts: 10, maxAgeMs: 300_000 });
  });
});
