import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBucket, RateLimiter, actionKindOf, bucketShape } from '../../src/genesys/rate-limiter.js';
import { WindowLog } from '../../src/simulator/faults.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { uniqueName } from '../support/kafka.js';

describe('bucketShape', () => {
  it('keeps a small burst and a steady pace just under the budget', () => {
    expect(bucketShape({ limit: 300, windowMs: 60_000 })).toEqual({ capacity: 15, perMs: 270 / 60_000 });
    expect(bucketShape({ limit: 10, windowMs: 1_000 }).capacity).toBe(1);
  });
});

describe('MemoryBucket', () => {
  it('never lets more than the limit through in any window, however hard it is pushed', async () => {
    let now = 0;
    const budget = { limit: 60, windowMs: 10_000 };
    const bucket = new MemoryBucket(budget, () => now);
    const sent = new WindowLog();
    // 1000 callers arrive over 40 s, all at once in bursts of 50 every 2 s; each calls when its wait is over.
    const callTimes: number[] = [];
    for (let burst = 0; burst < 20; burst++) {
      now = burst * 2_000;
      for (let i = 0; i < 50; i++) callTimes.push(now + (await bucket.reserve()));
    }
    for (const t of callTimes.sort((a, b) => a - b)) sent.add(t, budget.windowMs);
    expect(sent.max).toBeLessThanOrEqual(budget.limit);
    // …and it does not starve: the steady pace is close to the budget.
    const last = callTimes[callTimes.length - 1] ?? 0;
    expect(callTimes.length / (last / budget.windowMs)).toBeGreaterThan(budget.limit * 0.85);
  });

  it('lets a call through at once when budget is left', async () => {
    const bucket = new MemoryBucket({ limit: 100, windowMs: 1_000 }, () => 0);
    expect(await bucket.reserve()).toBe(0);
  });
});

describe('actionKindOf', () => {
  it('names the action of a Genesys path', () => {
    expect(actionKindOf('/api/v2/conversations/emails/agentless')).toBe('agentlessEmail');
    expect(actionKindOf('/api/v2/conversations/messages/agentless')).toBe('agentlessMessage');
    expect(actionKindOf('/api/v2/outbound/contactlists/abc/contacts?priority=true')).toBe('campaignContact');
    expect(actionKindOf('/api/v2/users/me')).toBeUndefined();
  });
});

describe('RateLimiter with Redis (the replicas share the organisation budget)', () => {
  const limiters: RateLimiter[] = [];
  afterAll(() => Promise.all(limiters.map((l) => l.close())));

  it('hands out one budget to two limiters', async () => {
    const prefix = `${uniqueName('geb-unit')}:`;
    const make = () => {
      const limiter = new RateLimiter({
        perClient: { limit: 1_000_000, windowMs: 1_000 },
        orgByAction: { agentlessEmail: { limit: 40, windowMs: 60_000 } },
        redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
        redisKeyPrefix: prefix,
        logger: createLogger('silent'),
      });
      limiters.push(limiter);
      return limiter;
    };
    const [a, b] = [make(), make()];
    await Promise.all([a.ready(), b.ready()]);
    // The burst is 2 (40 / 20) for both together: the third call, whichever replica makes it, must wait.
    const path = '/api/v2/conversations/emails/agentless';
    const controller = new AbortController();
    expect(await a.acquire(path)).toBe(0);
    expect(await b.acquire(path)).toBe(0);
    const third = b.acquire(path, { waitSignal: controller.signal });
    controller.abort();
    await expect(third).rejects.toMatchObject({ name: 'ShutdownError' });
    // Paths without an organisation budget are not held back.
    expect(await a.acquire('/api/v2/users/me')).toBe(0);
  });

  it('reports an unreachable Redis as a retryable RATE_LIMIT_STORE_UNAVAILABLE', async () => {
    const limiter = new RateLimiter({
      perClient: { limit: 100, windowMs: 1_000 },
      orgByAction: { agentlessEmail: { limit: 40, windowMs: 60_000 } },
      redisUrl: 'redis://127.0.0.1:1',
      logger: createLogger('silent'),
    });
    limiters.push(limiter);
    await expect(limiter.acquire('/api/v2/conversations/emails/agentless')).rejects.toMatchObject({
      code: 'RATE_LIMIT_STORE_UNAVAILABLE',
      disposition: 'retry',
    });
  });
});
