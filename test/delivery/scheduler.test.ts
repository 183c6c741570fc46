import { describe, expect, it } from 'vitest';
import { Scheduler, type Entry, type SchedulerLimits } from '../../src/delivery/scheduler.js';

const P = 'orders:0';
const limits = (l: Partial<SchedulerLimits> = {}): SchedulerLimits => ({
  maxInFlight: 100,
  maxInFlightPerPartition: 100,
  maxQueuedPerPartition: 100,
  ...l,
});

function scheduler(l?: Partial<SchedulerLimits>, partitions = [P]) {
  const s = new Scheduler<string>(limits(l));
  for (const p of partitions) s.assign(p);
  return s;
}

/** Offers `keys[i]` at offset i (plus `from`); null: no key, an array: several. */
function offerAll(s: Scheduler<string>, keys: (string | string[] | null)[], partition = P, from = 0) {
  keys.forEach((key, i) =>
    expect(s.offer(partition, BigInt(from + i), keysOf(key), `${String(key)}@${from + i}`)).toBe('accepted'),
  );
}

const keysOf = (key: string | string[] | null): string[] =>
  key === null ? [] : Array.isArray(key) ? key : [key];

const offsets = (entries: Entry<string>[]) => entries.map((e) => Number(e.offset));

describe('Scheduler', () => {
  it('runs different keys at once and the same key strictly in offset order', () => {
    const s = scheduler();
    offerAll(s, ['a', 'b', 'a', 'c', 'a', 'b']);
    const first = s.take();
    expect(offsets(first)).toEqual([0, 1, 3]);
    expect(s.take()).toEqual([]);

    // b@1 finishing lets b@5 start, not a@2 (a@0 still runs).
    s.complete(first[1]!);
    expect(offsets(s.take())).toEqual([5]);
    s.complete(first[0]!);
    const a2 = s.take();
    expect(offsets(a2)).toEqual([2]);
    s.complete(a2[0]!);
    expect(offsets(s.take())).toEqual([4]);
  });

  it('starts an event with several keys once it is first in line for each of them', () => {
    const s = scheduler();
    // @0 a, @1 b, @2 a+b (two rules, two ordering keys), @3 b, @4 c+c (the same key twice counts once)
    offerAll(s, ['a', 'b', ['a', 'b'], 'b', ['c', 'c']]);
    const first = s.take();
    expect(offsets(first)).toEqual([0, 1, 4]);
    s.complete(first[0]!); // a free, b still held by @1
    expect(s.take()).toEqual([]);
    s.complete(first[1]!);
    const both = s.take();
    expect(offsets(both)).toEqual([2]); // @3 waits behind @2 for b
    s.complete(both[0]!);
    expect(offsets(s.take())).toEqual([3]);
    s.complete(first[2]!);
    expect(s.watermark(P)).toBe(3n);
  });

  it('settles an event needing no work at once: only the watermark moves past it', () => {
    const s = scheduler();
    offerAll(s, ['a']);
    expect(s.settle(P, 1n)).toBe('accepted');
    expect(s.settle(P, 2n)).toBe('accepted');
    expect(s.settle(P, 1n)).toBe('duplicate');
    expect(s.unfinished).toBe(1);
    expect(s.watermark(P)).toBe(0n); // @0 is not final yet
    const [a0] = s.take();
    s.complete(a0!);
    expect(s.watermark(P)).toBe(3n);
    expect(s.settle('t:9', 0n)).toBe('unassigned');
    s.drain();
    expect(s.settle(P, 3n)).toBe('unassigned');
  });

  it('runs events with a null key each on their own', () => {
    const s = scheduler();
    offerAll(s, [null, null, null]);
    expect(offsets(s.take())).toEqual([0, 1, 2]);
  });

  it('commits the lowest offset not yet final, whatever finished after it', () => {
    const s = scheduler();
    expect(s.watermark(P)).toBeUndefined();
    offerAll(s, ['a', 'b', 'c', 'd'], P, 10);
    const [a, b, c, d] = s.take();
    expect(s.watermark(P)).toBe(10n);
    s.complete(b!);
    s.complete(d!);
    expect(s.watermark(P)).toBe(10n);
    s.complete(a!);
    expect(s.watermark(P)).toBe(12n);
    s.complete(c!);
    expect(s.watermark(P)).toBe(14n);
  });

  it('bounds concurrency per partition and in total, fairly across partitions', () => {
    const s = scheduler({ maxInFlightPerPartition: 2, maxInFlight: 3 }, ['t:0', 't:1']);
    offerAll(s, ['a', 'b', 'c'], 't:0');
    offerAll(s, ['x', 'y', 'z'], 't:1');
    const started = s.take();
    expect(started.map((e) => e.partition).sort()).toEqual(['t:0', 't:0', 't:1']);
    expect(s.running).toBe(3);
    s.complete(started[0]!);
    expect(s.take()).toHaveLength(1);
    expect(s.running).toBe(3);
  });

  it('lends the slot of an event waiting on retries to other keys, and holds back only its own key', () => {
    const s = scheduler({ maxInFlightPerPartition: 1 });
    offerAll(s, ['a', 'a', 'b']);
    const [a0] = s.take();
    expect(s.take()).toEqual([]);
    s.setWaiting(a0!, true);
    const next = s.take();
    expect(offsets(next)).toEqual([2]); // b, not a@1
    s.complete(next[0]!);
    s.setWaiting(a0!, false);
    expect(s.take()).toEqual([]);
    s.complete(a0!);
    expect(offsets(s.take())).toEqual([1]);
  });

  it('is full at the queue bound and has room again at half of it', () => {
    const s = scheduler({ maxQueuedPerPartition: 4 });
    offerAll(s, ['a', 'b', 'c', 'd']);
    expect(s.isFull(P)).toBe(true);
    expect(s.admits(P, 4n)).toBe('full');
    expect(s.offer(P, 4n, ['e'], 'e')).toBe('full');
    const started = s.take();
    s.complete(started[0]!);
    expect(s.isFull(P)).toBe(false);
    expect(s.hasRoom(P)).toBe(false);
    s.complete(started[1]!);
    expect(s.hasRoom(P)).toBe(true);
  });

  it('skips offsets it already took in (a re-fetch after a rebalance that kept the partition)', () => {
    const s = scheduler();
    offerAll(s, ['a', 'b']);
    expect(s.admits(P, 1n)).toBe('duplicate');
    expect(s.admits(P, 2n)).toBe('accepted');
    expect(s.offer(P, 0n, ['a'], 'again')).toBe('duplicate');
    expect(s.offer(P, 1n, ['b'], 'again')).toBe('duplicate');
    expect(s.offer(P, 2n, ['c'], 'c')).toBe('accepted');
  });

  it('starts nothing new while paused; the running probe goes on', () => {
    const s = scheduler();
    offerAll(s, ['a']);
    const [probe] = s.take();
    offerAll(s, ['b', 'c'], P, 1);
    s.paused = true;
    expect(s.take()).toEqual([]);
    s.complete(probe!);
    expect(s.take()).toEqual([]);
    expect(s.watermark(P)).toBe(1n);
    s.paused = false;
    expect(offsets(s.take())).toEqual([1, 2]);
  });

  it('drops the queued work of a revoked partition and ignores the completion of what still ran there', () => {
    const s = scheduler({}, ['t:0', 't:1']);
    offerAll(s, ['a', 'a', 'b'], 't:0');
    offerAll(s, ['x'], 't:1');
    const started = s.take();
    const onRevoked = started.find((e) => e.partition === 't:0')!;
    expect(offsets(s.revoke('t:0'))).toEqual([1]); // a@1; a@0 and b@2 were running
    expect(s.partitions).toEqual(['t:1']);
    expect(s.offer('t:0', 3n, ['c'], 'c')).toBe('unassigned');
    expect(s.running).toBe(1);

    // Assigned again: a fresh start from the committed offset; the old run finishing moves nothing.
    s.assign('t:0');
    offerAll(s, ['a'], 't:0', 0);
    s.complete(onRevoked);
    expect(s.watermark('t:0')).toBe(0n);
  });

  it('on drain, fills only the gaps below work already started, so the final watermark covers everything sent', () => {
    const s = scheduler();
    offerAll(s, ['a', 'a', 'b', 'c']);
    const [a0, b2, c3] = s.take();
    expect(offsets([a0!, b2!, c3!])).toEqual([0, 2, 3]);
    s.drain();
    expect(s.offer(P, 4n, ['d'], 'd')).toBe('unassigned');
    expect(offsets(s.queued())).toEqual([1]);
    s.complete(a0!);
    s.complete(b2!);
    s.complete(c3!);
    expect(s.idle).toBe(false); // a@1 lies below started work
    const gap = s.take();
    expect(offsets(gap)).toEqual([1]);
    s.complete(gap[0]!);
    expect(s.idle).toBe(true);
    expect(s.watermark(P)).toBe(4n);
  });

  it('keeps the watermark below an event abandoned at shutdown', () => {
    const s = scheduler();
    offerAll(s, ['a', 'b']);
    const [a0, b1] = s.take();
    s.complete(b1!);
    s.abandon(a0!);
    expect(s.running).toBe(0);
    expect(s.watermark(P)).toBe(0n);
  });

  it('keeps per-key offset order and a correct watermark under random completion order', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const s = scheduler({ maxInFlightPerPartition: 5, maxQueuedPerPartition: 50 });
    const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    // No key, one key or two (an event matching two rules with different ordering keys), sometimes the same twice.
    const pick = (): string[] =>
      Array.from({ length: Math.floor(random() * 3) }, () => keys[Math.floor(random() * keys.length)]!);
    const startedPerKey = new Map<string, number[]>();
    const final = new Set<number>();
    let offered = 0;
    const running: Entry<string>[] = [];
    while (final.size < 500) {
      while (offered < 500 && s.offer(P, BigInt(offered), pick(), '') === 'accepted') offered += 1;
      for (const e of s.take()) {
        for (const key of e.keys) {
          startedPerKey.set(key, [...(startedPerKey.get(key) ?? []), Number(e.offset)]);
          // Never two entries sharing a key at once.
          expect(running.some((r) => r.keys.includes(key))).toBe(false);
        }
        running.push(e);
      }
      expect(running.length).toBeLessThanOrEqual(5);
      const done = running.splice(Math.floor(random() * running.length), 1)[0]!;
      s.complete(done);
      final.add(Number(done.offset));
      let lowestUnfinished = 0;
      while (final.has(lowestUnfinished)) lowestUnfinished += 1;
      expect(s.watermark(P)).toBe(BigInt(Math.min(lowestUnfinished, offered)));
    }
    for (const list of startedPerKey.values()) expect(list).toEqual([...list].sort((x, y) => x - y));
    expect(s.watermark(P)).toBe(500n);
  });
});
