import type * as IORedis from 'ioredis';
import type { Redis } from 'ioredis';
import { lazyPackage } from '../lazy.js';

const ioredis = lazyPackage<typeof IORedis>('ioredis');
import { BridgeError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { waitOut, type Waits } from '../wait.js';

/** So many calls per window; Genesys counts per minute. */
export interface Budget {
  readonly limit: number;
  readonly windowMs: number;
}

export interface RateLimitOptions {
  /** Calls per window one OAuth client's token may make (Genesys: 300 a minute per token). */
  readonly perClient: Budget;
  /** Budgets the whole organisation shares, by action kind (agentless email: 300 a minute, whatever the token). */
  readonly orgByAction: Readonly<Partial<Record<ActionKind, Budget>>>;
  /** When set, the organisation's budgets live in Redis, shared by every replica; otherwise in this process. */
  readonly redisUrl?: string;
  /** Prefix of the Redis keys: replicas that share a budget must share it; another organisation must not. */
  readonly redisKeyPrefix?: string;
  readonly logger: Logger;
}

export type ActionKind = 'agentlessEmail' | 'agentlessMessage' | 'campaignContact';

const ACTION_PATHS: readonly (readonly [RegExp, ActionKind])[] = [
  [/^\/api\/v2\/conversations\/emails\/agentless$/, 'agentlessEmail'],
  [/^\/api\/v2\/conversations\/messages\/agentless$/, 'agentlessMessage'],
  [/^\/api\/v2\/outbound\/contactlists\/[^/]+\/contacts$/, 'campaignContact'],
];

/** The action a Genesys API path performs, for its organisation-wide budget. */
export function actionKindOf(path: string): ActionKind | undefined {
  const bare = path.replace(/\?.*$/, '');
  return ACTION_PATHS.find(([pattern]) => pattern.test(bare))?.[1];
}

/**
 * How much later than its reserved time a call may reach Genesys, compared with the other calls of the same budget,
 * without risking a 429: a GC pause or busy event loop in one replica, a Redis answer or a connection that is slower
 * for one call than for the next. (A delay every call shares does not matter.) Measured on a loaded 2-core machine:
 * at most about 130 ms between two replicas sharing a budget, under 60 ms within one process; 250 ms leaves room
 * for the network to Genesys. A longer stall can cost a 429: see bucketShape for the trade.
 */
export const JITTER_ALLOWANCE_MS = 250;

/**
 * The calls that may go at once: what the budget allows in this long (at least one). Spacing calls finer than a
 * timer tick only adds timers (setTimeout counts whole milliseconds) and waits to budgets that are in effect
 * unlimited; for Genesys' 300 a minute it means no burst at all.
 */
const BURST_MS = 20;

/** How often a background call looks again for a free turn. */
const BACKGROUND_POLL_MS = 25;

/**
 * The pace that keeps a budget of `limit` calls in ANY window of `windowMs`, even when calls reach Genesys up to
 * JITTER_ALLOWANCE_MS later than one another. Any window, i.e. a sliding one: Genesys does not say whether its
 * minute slides or restarts on the clock, and the sliding reading is the stricter.
 *
 * Why this shape: a token bucket of capacity C and rate r hands out fewer than `C + r × T` turns in any span T, so
 * with `r = (limit − C + 1) / (windowMs + JITTER_ALLOWANCE_MS)` a span of the window plus the allowance holds at most
 * `limit` turns, and the calls that land in one Genesys window were reserved within such a span. The allowance is
 * the margin; it costs `allowance / (windowMs + allowance)` of the budget: 0.4% of Genesys' 300 a minute (2.4% of
 * the benchmark's 50 per 10 s). A burst costs its size on top (a window after an idle spell can hold the burst and a
 * full window's pace), so it is kept to BURST_MS: a larger one buys nothing an email needs, the second of two
 * simultaneous sends waiting 200 ms instead of none. A stall longer than the allowance lets about
 * `(stall − allowance) × pace` calls too many into a window; their 429s close the client's Retry-After gate, the
 * calls held there take new turns (client.ts) and the 429ed ones are retried. A wider allowance would buy fewer of
 * those 429s with budget.
 */
export function bucketShape(budget: Budget): { capacity: number; perMs: number } {
  const capacity = Math.max(1, Math.floor((budget.limit * BURST_MS) / budget.windowMs));
  return { capacity, perMs: (budget.limit - capacity + 1) / (budget.windowMs + JITTER_ALLOWANCE_MS) };
}

/**
 * A reserving bucket: every call takes a token at once, the balance may go negative, and the caller waits until its
 * token would have been there. One round trip per call and first come, first served, even across replicas.
 */
interface Bucket {
  /** Takes one token; resolves to how long the caller must wait before calling. */
  reserve(): Promise<number>;
}

export class MemoryBucket implements Bucket {
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(budget: Budget, now: () => number = Date.now) {
    const { capacity, perMs } = bucketShape(budget);
    this.#capacity = capacity;
    this.#perMs = perMs;
    this.#now = now;
    this.#tokens = capacity;
    this.#at = now();
  }

  /** Milliseconds until a turn would be free without waiting; takes nothing. */
  msUntilFree(): number {
    const tokens = Math.min(this.#capacity, this.#tokens + Math.max(0, this.#now() - this.#at) * this.#perMs);
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / this.#perMs);
  }

  reserve(): Promise<number> {
    const now = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + Math.max(0, now - this.#at) * this.#perMs) - 1;
    this.#at = now;
    return Promise.resolve(this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#perMs));
  }
}

/**
 * The same bucket in Redis, so that replicas share it. The script runs atomically and reads Redis' own clock, so
 * replicas with skewed clocks still agree.
 */
const RESERVE_SCRIPT = `
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * perMs) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / perMs) + 1000)
if tokens >= 0 then
  return 0
end
return math.ceil(-tokens / perMs)
`;

type ReservingRedis = Redis & {
  gebReserve(key: string, capacity: number, perMs: number): Promise<number>;
};

class RedisBucket implements Bucket {
  readonly #redis: ReservingRedis;
  readonly #key: string;
  readonly #capacity: number;
  readonly #perMs: number;

  constructor(redis: ReservingRedis, key: string, budget: Budget) {
    const { capacity, perMs } = bucketShape(budget);
    this.#redis = redis;
    this.#key = key;
    this.#capacity = capacity;
    this.#perMs = perMs;
  }

  async reserve(): Promise<number> {
    try {
      return Number(await this.#redis.gebReserve(this.#key, this.#capacity, this.#perMs));
    } catch (error) {
      throw new BridgeError(
        'RATE_LIMIT_STORE_UNAVAILABLE',
        `the shared rate budget ${this.#key} could not be read from Redis: ${(error as Error).message}`,
      );
    }
  }
}

/**
 * Rate limits for one OAuth client: its own per-token bucket (in this process: each replica holds its own token,
 * and Genesys counts per token) and the organisation-wide bucket of the action (in Redis when configured). Acquire
 * before every call; the time spent waiting is returned so that it can be logged and measured.
 */
export class RateLimiter {
  readonly #perClient: MemoryBucket;
  /** Sends inside acquire(): a background call never takes a turn while one of them waits for it. */
  #sendsWaiting = 0;
  readonly #org = new Map<ActionKind, Bucket>();
  readonly #redis: ReservingRedis | undefined;

  constructor(options: RateLimitOptions) {
    this.#perClient = new MemoryBucket(options.perClient);
    if (options.redisUrl) {
      const redis = new (ioredis().Redis)(options.redisUrl, {
        // Fail fast rather than queue calls while Redis is away: the delivery is then retried, and paused if
        // Redis stays away, instead of hanging.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: 5_000,
        lazyConnect: false,
      });
      redis.defineCommand('gebReserve', { numberOfKeys: 1, lua: RESERVE_SCRIPT });
      let reported = false;
      redis.on('error', (error: Error) => {
        if (reported) return;
        reported = true;
        options.logger.error(
          { code: 'RATE_LIMIT_STORE_UNAVAILABLE' },
          `Redis (shared rate budgets) error: ${error.message}`,
        );
      });
      redis.on('ready', () => {
        reported = false;
      });
      this.#redis = redis as ReservingRedis;
    }
    const prefix = options.redisKeyPrefix ?? 'geb:';
    for (const [kind, budget] of Object.entries(options.orgByAction) as [ActionKind, Budget | undefined][]) {
      if (!budget || budget.limit <= 0) continue;
      this.#org.set(
        kind,
        this.#redis
          ? new RedisBucket(this.#redis, `${prefix}rate:org:${kind}`, budget)
          : new MemoryBucket(budget),
      );
    }
  }

  /** Resolves once Redis answers (or at once without Redis); rejects after `timeoutMs`. */
  async ready(timeoutMs = 5_000): Promise<void> {
    const redis = this.#redis;
    if (!redis || redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new BridgeError('RATE_LIMIT_STORE_UNAVAILABLE', `Redis not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      redis.once('ready', onReady);
    });
  }

  /** Waits until a call of `path` fits both budgets; returns the milliseconds waited. */
  async acquire(path: string, hooks: Waits = {}): Promise<number> {
    this.#sendsWaiting += 1;
    try {
      return await this.#acquire(path, hooks);
    } finally {
      this.#sendsWaiting -= 1;
    }
  }

  /**
   * For background calls (delivery status checks): the same per-client budget, at a lower priority. It takes a turn
   * only when one is free right now and no send is waiting, so it never makes a send wait longer than the send's own
   * pace; it counts against the budget like any call, so the two together stay within it. Returns the ms waited.
   */
  async acquireBackground(hooks: Waits = {}): Promise<number> {
    const started = Date.now();
    for (;;) {
      const freeInMs = this.#perClient.msUntilFree();
      if (this.#sendsWaiting === 0 && freeInMs === 0) {
        // Synchronous for the memory bucket: nothing can come in between the check and the reservation.
        void this.#perClient.reserve();
        return Date.now() - started;
      }
      await waitOut(Math.max(BACKGROUND_POLL_MS, Math.min(freeInMs, 1_000)), hooks);
    }
  }

  async #acquire(path: string, hooks: Waits): Promise<number> {
    let waited = 0;
    const kind = actionKindOf(path);
    const org = kind ? this.#org.get(kind) : undefined;
    // The shared budget first: it is the scarce one, and a slot taken there should not also sit out a local wait.
    if (org) {
      const ms = await org.reserve();
      if (ms > 0) await waitOut(ms, hooks);
      waited += ms;
    }
    const ms = await this.#perClient.reserve();
    if (ms > 0) await waitOut(ms, hooks);
    return waited + ms;
  }

  async close(): Promise<void> {
    if (!this.#redis) return;
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}
