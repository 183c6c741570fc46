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

/**
 * `text` with the user-info of every URL in it (`postgres://user:password@host`, `redis://:password@host`) replaced
 * by `***` (in Kafka-style schemes like `SASL_SSL://` too): a URL's user name alone may be a password (Redis reads it so), so the whole user-info goes. For anything
 * that prints a setting or an error that may quote one. Greedy to the last `@` of the authority, as a password with
 * an unescaped `@` is still a password.
 */
export function maskUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+._-]*:\/\/)[^\s/?#"'`]*@/gi, '$1***@');
}
