import { afterAll, describe, expect, it } from 'vitest';
import {
  JITTER_ALLOWANCE_MS,
  MemoryBucket,
  RateLimiter,
  actionKindOf,
  bucketShape,
} from '../../src/genesys/rate-limiter.js';
import { WindowLog } from '../../src/simulator/faults.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { uniqueName } from '../support/kafka.js';

describe('bucketShape', () => {
  it('paces evenly with the jitter allowance as the margin, and bursts only what 20 ms of the budget allows', () => {
    expect(bucketShape({ limit: 300, windowMs: 60_000 })).toEqual({
      capacity: 1,
      perMs: 300 / (60_000 + JITTER_ALLOWANCE_MS),
    });
    expect(bucketShape({ limit: 10, windowMs: 1_000 }).capacity).toBe(1);
    // A budget that is in effect unlimited is not spaced out call by call.
    expect(bucketShape({ limit: 1_000_000, windowMs: 60_000 })).toEqual({
      capacity: 333,
      perMs: (1_000_000 - 332) / (60_000 + JITTER_ALLOWANCE_MS),
    });
  });
});

/** Reserves `callers` turns in bursts of `burst` every `everyMs` on a fake clock; returns when each may call. */
async function reserveAll(
  bucket: MemoryBucket,
  clock: { now: number },
  burst: number,
  everyMs: number,
  callers: number,
) {
  const times: number[] = [];
  for (let i = 0; i < callers; i++) {
    if (i % burst === 0) clock.now = (i / burst) * everyMs;
    times.push(clock.now + (await bucket.reserve()));
  }
  return times;
}

function maxInWindow(times: readonly number[], windowMs: number): number {
  const log = new WindowLog();
  for (const t of [...times].sort((a, b) => a - b)) log.add(t, windowMs);
  return log.max;
}

describe('MemoryBucket', () => {
  it('never lets more than the limit through in any window, however hard it is pushed', async () => {
    const clock = { now: 0 };
    const budget = { limit: 60, windowMs: 10_000 };
    const bucket = new MemoryBucket(budget, () => clock.now);
    // 1000 callers arrive over 40 s, all at once in bursts of 50 every 2 s; each calls when its wait is over.
    const callTimes = await reserveAll(bucket, clock, 50, 2_000, 1_000);
    expect(maxInWindow(callTimes, budget.windowMs)).toBeLessThanOrEqual(budget.limit);
    // …and it does not starve: the steady pace is the budget less the jitter allowance.
    const last = Math.max(...callTimes);
    const perWindow = (callTimes.length - 1) / (last / budget.windowMs);
    expect(perWindow).toBeCloseTo(
      (budget.limit * budget.windowMs) / (budget.windowMs + JITTER_ALLOWANCE_MS),
      1,
    );
  });

  it.each([
    { limit: 50, windowMs: 10_000, burst: 40, everyMs: 3_000 },
    { limit: 6_000, windowMs: 10_000, burst: 400, everyMs: 500 },
  ])(
    'stays within $limit per $windowMs ms when calls reach Genesys up to the jitter allowance late',
    async (c) => {
      const clock = { now: 0 };
      const budget = { limit: c.limit, windowMs: c.windowMs };
      const bucket = new MemoryBucket(budget, () => clock.now);
      // Callers arrive faster than the budget allows, for about three windows.
      const reserved = await reserveAll(bucket, clock, c.burst, c.everyMs, Math.ceil(c.limit * 3.2));
      // The worst case for a window: the calls at its start late by the whole allowance, those at its end on time,
      // as when a replica stalls and the other does not.
      const lateUntil = (late: number) => (t: number, i: number) => t + (i < reserved.length / 2 ? late : 0);
      expect(maxInWindow(reserved.map(lateUntil(JITTER_ALLOWANCE_MS)), budget.windowMs)).toBeLessThanOrEqual(
        budget.limit,
      );
      let seed = 7;
      const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
      const jittered = reserved.map((t) => t + random() * JITTER_ALLOWANCE_MS);
      expect(maxInWindow(jittered, budget.windowMs)).toBeLessThanOrEqual(budget.limit);
      // A stall longer than the allowance is what the margin does not cover: it can bring a call too many.
      const stalled = reserved.map(lateUntil(JITTER_ALLOWANCE_MS + 250));
      expect(maxInWindow(stalled, budget.windowMs)).toBeGreaterThan(budget.limit);
    },
  );

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
    // No burst, for both together: the first call goes at once, the second, whichever replica makes it, waits its
    // turn (1.5 s at 40 a minute).
    const path = '/api/v2/conversations/emails/agentless';
    const controller = new AbortController();
    expect(await a.acquire(path)).toBe(0);
    const second = b.acquire(path, { waitSignal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ name: 'ShutdownError' });
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

describe('RateLimiter background calls (status checks)', () => {
  it('gives a background call a turn only when no send waits for one, and keeps both within the budget', async () => {
    const windowMs = 1_000;
    const limiter = new RateLimiter({
      perClient: { limit: 20, windowMs },
      orgByAction: {},
      logger: createLogger('silent'),
    });
    const log = new WindowLog();
    const sendsDone: number[] = [];
    const backgroundDone: number[] = [];
    const path = '/api/v2/conversations/messages/agentless';
    // Background callers first: they are there before the sends and still must not go ahead of them.
    const background = Array.from({ length: 10 }, () =>
      limiter.acquireBackground().then(() => {
        const now = Date.now();
        backgroundDone.push(now);
        log.add(now, windowMs);
      }),
    );
    await new Promise((r) => setTimeout(r, 5));
    const sends = Array.from({ length: 20 }, () =>
      limiter.acquire(path).then(() => {
        const now = Date.now();
        sendsDone.push(now);
        log.add(now, windowMs);
      }),
    );
    await Promise.all([...sends, ...background]);
    // At most one background call may have found a free turn before the first send arrived.
    const early = backgroundDone.filter((t) => t < Math.min(...sendsDone));
    expect(early.length).toBeLessThanOrEqual(1);
    const late = backgroundDone.filter((t) => t >= Math.min(...sendsDone));
    expect(Math.min(...late)).toBeGreaterThanOrEqual(Math.max(...sendsDone));
    expect(log.max).toBeLessThanOrEqual(20);
    await limiter.close();
  });
});
