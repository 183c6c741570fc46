import { waitOut, type Waits } from '../wait.js';

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
  async pass(hooks: Waits = {}): Promise<number> {
    let waited = 0;
    for (let left = this.msLeft(); left > 0; left = this.msLeft()) {
      await waitOut(left, hooks);
      waited += left;
    }
    return waited;
  }
}
