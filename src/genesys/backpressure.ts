import { ShutdownError } from '../errors.js';

/** What a call that may have to wait (a rate budget, a Retry-After) needs from its caller. */
export interface WaitHooks {
  /** Aborts the wait (not a call in flight) when the bridge stops: the event is then redelivered. */
  readonly waitSignal?: AbortSignal;
  /** Called every few seconds while waiting, so that a long wait does not cost the consumer its group membership. */
  readonly heartbeat?: () => Promise<void>;
}

const HEARTBEAT_EVERY_MS = 3_000;

/** Sleeps `ms`, heartbeating meanwhile; throws ShutdownError as soon as the wait signal aborts. */
export async function waitOut(ms: number, hooks: WaitHooks = {}): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) return;
    await sleep(Math.min(left, HEARTBEAT_EVERY_MS), hooks.waitSignal);
    if (hooks.heartbeat && until - Date.now() > 0) await hooks.heartbeat();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new ShutdownError());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ShutdownError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Genesys' 429 speaks for the OAuth client, not for the one call that got it: once one call is told to retry after
 * N seconds, every call of that client holds back until then instead of collecting 429s of its own.
 */
export class RetryAfterGate {
  #notBeforeMs = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** No call goes out before `delayMs` from now (an earlier, longer block stays). */
  block(delayMs: number): void {
    this.#notBeforeMs = Math.max(this.#notBeforeMs, this.#now() + delayMs);
  }

  msLeft(): number {
    return Math.max(0, this.#notBeforeMs - this.#now());
  }

  /** Waits until the gate is open; returns how long that took. */
  async pass(hooks: WaitHooks = {}): Promise<number> {
    let waited = 0;
    for (let left = this.msLeft(); left > 0; left = this.msLeft()) {
      await waitOut(left, hooks);
      waited += left;
    }
    return waited;
  }
}
