import { afterEach, describe, expect, it } from 'vitest';
import { ShutdownError } from '../../src/errors.js';
import { DeliveryRunner, type PreparedEvent } from '../../src/delivery/runner.js';
import { Health } from '../../src/health.js';
import type { Source } from '../../src/intake.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';
import { waitFor } from '../support/kafka.js';

const P = 'orders:0';

/** A source that records what the runner asks of the consumer. */
class FakeSource implements Source {
  canPause = true;
  readonly paused = new Set<string>();
  readonly commits: Record<string, string>[] = [];
  pause(ids: readonly string[]) {
    for (const id of ids) this.paused.add(id);
  }
  resume(ids: readonly string[]) {
    for (const id of ids) this.paused.delete(id);
  }
  commit(offsets: ReadonlyMap<string, bigint>) {
    this.commits.push(Object.fromEntries([...offsets].map(([id, mark]) => [id, String(mark)])));
    return Promise.resolve();
  }
  get last(): Record<string, string> | undefined {
    return this.commits.at(-1);
  }
}

/** An event whose run the test finishes (or fails) by hand. */
function event(key: string) {
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  let started = false;
  let dropped = false;
  const prepared: PreparedEvent = {
    orderingKeys: [key],
    settled: false,
    run: () => {
      started = true;
      return new Promise<void>((resolve, reject) => {
        finish = resolve;
        fail = reject;
      });
    },
    drop: () => {
      dropped = true;
    },
  };
  return {
    prepared,
    finish: () => finish(),
    fail: (error: unknown) => fail(error),
    get started() {
      return started;
    },
    get dropped() {
      return dropped;
    },
  };
}

const SETTLED: PreparedEvent = {
  orderingKeys: [],
  settled: true,
  run: () => Promise.resolve(),
  drop: () => {},
};

describe('DeliveryRunner (a fake consumer source, hand-finished events)', () => {
  const runners: DeliveryRunner<unknown>[] = [];
  afterEach(async () => {
    for (const r of runners.splice(0)) await r.stop({ graceMs: 0, unwindMs: 0, onGraceOver: () => {} });
  });

  function start(limits = { maxInFlight: 10, maxInFlightPerPartition: 10, maxQueuedPerPartition: 4 }) {
    const source = new FakeSource();
    const crashes: Error[] = [];
    const runner = new DeliveryRunner<unknown>({
      limits,
      commitIntervalMs: 60_000,
      health: new Health(),
      logger: createLogger('debug', new LogCapture()),
      prepare: () => Promise.resolve(SETTLED),
      onCrash: (error) => crashes.push(error),
    });
    runners.push(runner);
    runner.attach(source);
    runner.start();
    runner.assigned(new Set([P]));
    return { runner, source, crashes };
  }

  it('commits the low watermark: nothing past an unfinished event, all of it once caught up', async () => {
    const { runner, source } = start();
    const [a, b] = [event('k1'), event('k2')];
    expect(runner.offer(P, 0n, a.prepared)).toBe('accepted');
    expect(runner.offer(P, 1n, b.prepared)).toBe('accepted');
    expect(a.started && b.started).toBe(true);
    b.finish();
    await new Promise((resolve) => setImmediate(resolve));
    runner.afterBatch();
    expect(source.commits).toEqual([]);
    a.finish();
    await waitFor(() => source.last?.[P] === '2');
  });

  it('commits an event that needs no delivery at once', async () => {
    const { runner, source } = start();
    expect(runner.offer(P, 0n, SETTLED)).toBe('accepted');
    runner.afterBatch();
    await waitFor(() => source.last?.[P] === '1');
  });

  it('runs events of one ordering key one at a time, in offset order', async () => {
    const { runner } = start();
    const [a, b] = [event('same'), event('same')];
    runner.offer(P, 0n, a.prepared);
    runner.offer(P, 1n, b.prepared);
    expect([a.started, b.started]).toEqual([true, false]);
    a.finish();
    await waitFor(() => b.started);
  });

  it('pauses fetching a full partition and resumes it once there is room again', async () => {
    const { runner, source } = start({
      maxInFlight: 10,
      maxInFlightPerPartition: 10,
      maxQueuedPerPartition: 2,
    });
    const events = [event('k'), event('k')];
    events.forEach((e, i) => runner.offer(P, BigInt(i), e.prepared));
    expect(runner.admits(P, 2n)).toBe('full');
    expect(await runner.roomFor(P, 2n)).toBe('full');
    expect(source.paused.has(P)).toBe(true);
    events[0]?.finish();
    await waitFor(() => events[1]?.started === true);
    events[1]?.finish();
    await waitFor(() => !source.paused.has(P));
  });

  it('drops the queued events of a revoked partition (they are fetched again by its new owner)', () => {
    const { runner } = start();
    const [a, b] = [event('k'), event('k')];
    runner.offer(P, 0n, a.prepared);
    runner.offer(P, 1n, b.prepared);
    runner.assigned(new Set());
    expect(b.dropped).toBe(true);
    expect(runner.admits(P, 2n)).toBe('unassigned');
  });

  it('on stop, waits for in-flight events within the grace, aborts the rest after it, and commits what is final', async () => {
    const { runner, source } = start();
    const [a, b] = [event('k1'), event('k2')];
    runner.offer(P, 0n, a.prepared);
    runner.offer(P, 1n, b.prepared);
    a.finish();
    let graceOver = false;
    await runner.stop({
      graceMs: 50,
      unwindMs: 1_000,
      onGraceOver: () => {
        graceOver = true;
        b.fail(new ShutdownError());
      },
    });
    expect(graceOver).toBe(true);
    expect(source.last?.[P]).toBe('1');
  });

  it('stops the process on a delivery that fails with anything but ShutdownError (a defect)', async () => {
    const { runner, crashes } = start();
    const a = event('k');
    runner.offer(P, 0n, a.prepared);
    a.fail(new TypeError('defect'));
    await waitFor(() => crashes.length === 1);
    expect(runner.crashed?.message).toBe('defect');
  });
});
