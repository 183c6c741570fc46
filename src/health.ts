import type { ErrorCode } from './errors.js';

export interface PauseReason {
  readonly code: ErrorCode;
  readonly message: string;
  readonly since: Date;
}

/**
 * Whether the bridge can do its work. A systemic failure (bad credentials, missing permission) pauses delivery;
 * the first successful call clears it. Read by the readiness probe and the logs.
 */
export class Health {
  #paused: PauseReason | undefined;
  #listeners: ((paused: PauseReason | undefined) => void)[] = [];

  get paused(): PauseReason | undefined {
    return this.#paused;
  }

  /** Returns true when this is a new reason (so the caller logs it once, not on every probe). */
  pause(code: ErrorCode, message: string): boolean {
    if (this.#paused?.code === code && this.#paused.message === message) return false;
    this.#paused = { code, message, since: new Date() };
    for (const listener of this.#listeners) listener(this.#paused);
    return true;
  }

  /** Returns true when the bridge was paused until now. */
  resume(): boolean {
    if (!this.#paused) return false;
    this.#paused = undefined;
    for (const listener of this.#listeners) listener(undefined);
    return true;
  }

  onChange(listener: (paused: PauseReason | undefined) => void): void {
    this.#listeners.push(listener);
  }
}
