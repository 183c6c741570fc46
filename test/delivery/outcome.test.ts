import { describe, expect, it } from 'vitest';
import { decide } from '../../src/delivery/outcome.js';
import { backoffMs, type RetryPolicy } from '../../src/delivery/retry-policy.js';
import { BridgeError } from '../../src/errors.js';

const policy: RetryPolicy = { baseDelayMs: 100, maxDelayMs: 5_000, pauseProbeMs: 10_000 };

describe('backoffMs', () => {
  it('doubles per attempt within [ceiling/2, ceiling] and never exceeds the cap', () => {
    expect(backoffMs(1, policy, () => 0)).toBe(50);
    expect(backoffMs(1, policy, () => 1)).toBe(100);
    expect(backoffMs(4, policy, () => 1)).toBe(800);
    expect(backoffMs(30, policy, () => 1)).toBe(5_000);
    expect(backoffMs(30, policy, () => 0)).toBe(2_500);
  });
});

describe('decide', () => {
  it('dead-letters what only this event got wrong', () => {
    expect(decide(new BridgeError('GENESYS_REJECTED', 'x'), 1, policy)).toMatchObject({
      kind: 'dead-letter',
      code: 'GENESYS_REJECTED',
    });
    expect(decide(new BridgeError('TEMPLATE_VARIABLE_MISSING', 'x'), 1, policy).kind).toBe('dead-letter');
  });

  it('pauses on systemic failures rather than dead-lettering', () => {
    for (const code of ['GENESYS_INVALID_CLIENT', 'GENESYS_FORBIDDEN', 'GENESYS_UNAUTHORIZED'] as const) {
      expect(decide(new BridgeError(code, 'x'), 1, policy)).toMatchObject({
        kind: 'pause',
        probeInMs: 10_000,
      });
    }
  });

  it('retries transient failures, honouring Retry-After', () => {
    expect(decide(new BridgeError('GENESYS_UNAVAILABLE', 'x'), 3, policy)).toMatchObject({ kind: 'retry' });
    const limited = decide(new BridgeError('GENESYS_RATE_LIMITED', 'x', { retryAfterMs: 4_000 }), 1, policy);
    expect(limited).toMatchObject({ kind: 'retry', delayMs: 4_000 });
  });

  it('never dead-letters an unexpected error (a bug must not empty a topic into the DLQ)', () => {
    expect(decide(new TypeError('boom'), 1, policy)).toMatchObject({ kind: 'retry', code: 'INTERNAL' });
  });
});
