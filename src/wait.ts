import { ShutdownError } from './errors.js';

/**
 * The one wait contract: what anything that may have to wait (a backoff, a pause probe, a rate budget, a Retry-After)
 * needs from its caller. Shared by the delivery side and the Genesys client, so it lives with the other leaves.
 */
export interface Waits {
  /** Aborts the wait (not a call in flight) when the bridge stops: the event is then redelivered. */
  readonly waitSignal?: AbortSignal;
  /** Called every few seconds while waiting, so that a long wait does not cost the consumer its group membership. */
  readonly heartbeat?: () => Promise<void>;
  /** Told when the wait starts and ends, so that the event's concurrency slot can be lent meanwhile. */
  readonly waiting?: (waiting: boolean) => void;
}

const HEARTBEAT_EVERY_MS = 3_000;

/** Sleeps `ms`, heartbeating meanwhile; throws ShutdownError as soon as the wait signal aborts. */
export async function waitOut(ms: number, waits: Waits = {}): Promise<void> {
  const until = Date.now() + ms;
  waits.waiting?.(true);
  try {
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return;
      await sleep(Math.min(left, HEARTBEAT_EVERY_MS), waits.waitSignal);
      if (waits.heartbeat && until - Date.now() > 0) await waits.heartbeat();
    }
  } finally {
    waits.waiting?.(false);
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
