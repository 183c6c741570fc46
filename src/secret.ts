import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * Holds a secret (client secret, token) so that it cannot leak by accident: string conversion, JSON, util.inspect
 * and pino all see `[redacted]`. Only `reveal()` gives the value, at the one place that must send it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
