import { describe, expect, it } from 'vitest';
import { ShutdownError } from '../src/errors.js';
import { waitOut } from '../src/wait.js';

describe('waitOut: the one abortable, heartbeating sleep', () => {
  it('tells when the wait starts and ends, around the sleep', async () => {
    const told: boolean[] = [];
    const started = Date.now();
    await waitOut(30, { waiting: (w) => told.push(w) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(told).toEqual([true, false]);
  });

  it('throws ShutdownError as soon as the wait signal aborts, and still says the wait ended', async () => {
    const stop = new AbortController();
    const told: boolean[] = [];
    const started = Date.now();
    setTimeout(() => stop.abort(), 20);
    await expect(
      waitOut(60_000, { waitSignal: stop.signal, waiting: (w) => told.push(w) }),
    ).rejects.toBeInstanceOf(ShutdownError);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(told).toEqual([true, false]);
  });

  it('throws at once when already stopped', async () => {
    const stop = new AbortController();
    stop.abort();
    await expect(waitOut(10, { waitSignal: stop.signal })).rejects.toBeInstanceOf(ShutdownError);
  });

  it('heartbeats during a wait longer than the heartbeat interval (3 s)', async () => {
    let beats = 0;
    await waitOut(3_500, { heartbeat: () => Promise.resolve(void beats++) });
    expect(beats).toBe(1);
  });
});
