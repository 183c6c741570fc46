import { createHash, createHmac } from 'node:crypto';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { Secret } from '../secret.js';

export type { Logger } from 'pino';

/**
 * Keys whose values never reach a log line, at the top of what a caller logs, one level down (`config.clientSecret`),
 * and under `headers` at either (`request.headers.authorization`). A second line of defence: callers log hashes and
 * never raw secrets, addresses or bodies in the first place, and Secret values already serialise as `[redacted]`.
 */
const SENSITIVE_KEYS = new Set(['clientSecret', 'accessToken', 'access_token', 'authorization', 'body']);
const CENSOR = '[redacted]';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { service: 'genesys-event-bridge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Not pino's `redact`: its wildcard paths (`*.body`) re-parse every path on every line, about 24 KB of garbage
      // per line, which was the largest allocation of a delivery. This walk copies only what it must blank.
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => censored(object, 0),
      },
      // Every line written inside a span carries its ids, so a log line leads to its trace and back.
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
      },
    },
    destination,
  );
  // pino applies no formatter to a child's bindings; children inherit this `child` (they are made with
  // Object.create(parent)), so every binding at any depth of children passes through it.
  type ChildFn = (this: Logger, bindings: Record<string, unknown>, options?: object) => Logger;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the right `this`
  const child = logger.child as unknown as ChildFn;
  const censoredChild: ChildFn = function (this, bindings, options) {
    return child.call(this, censored(bindings, 0), options);
  };
  logger.child = censoredChild as unknown as Logger['child'];
  return logger;
}

/**
 * `object` with sensitive keys blanked down to one level below the top (plus `headers` there), copied only where
 * something is blanked: a line with nothing to blank costs a walk over its keys and no allocation.
 */
function censored<T extends Record<string, unknown>>(object: T, depth: number): T {
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    const value = object[key];
    let replacement = value;
    if (SENSITIVE_KEYS.has(key)) {
      replacement = CENSOR;
    } else if (value !== null && typeof value === 'object' && (depth < 1 || key === 'headers')) {
      if (value instanceof Error) {
        // Kept as it is unless one of its own properties has to go; then a copy of the same class, so that pino's err
        // serializer still reports its type, message and stack.
        const own = { ...value } as Record<string, unknown>;
        const blanked = censored(own, depth + 1);
        if (blanked !== own) {
          const copy = Object.create(
            Object.getPrototypeOf(value) as object,
            Object.getOwnPropertyDescriptors(value),
          ) as Error;
          replacement = Object.assign(copy, blanked);
        }
      } else if (isPlainObject(value)) {
        replacement = censored(value, key === 'headers' ? depth : depth + 1);
      }
    }
    if (replacement !== value) (copy ??= { ...object })[key] = replacement;
  }
  return (copy ?? object) as T;
}

/** Objects a caller builds to log; class instances (a Secret, a Buffer) serialise themselves. */
function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Turns personal data (an address, a phone number) into its stand-in: see recipientHasher. */
export type RecipientHasher = (value: string) => string;

/**
 * A stable stand-in for personal data that lets an SRE correlate log lines and history records about the same
 * recipient without the value itself: the first 16 hex digits of HMAC-SHA-256(key, value). Addresses are trimmed and
 * case-folded first so that `A@x.com` and `a@x.com` hash alike.
 *
 * The key (RECIPIENT_HASH_KEY) is what makes it non-reversible: without it, anyone holding a list of addresses could
 * hash them all and look the hashes up. Without a key the hash is a plain SHA-256 (what the bridge wrote before keys
 * existed, so older records still match), and the bridge warns at start-up. The key is passed in, never read here:
 * `geb run` and `geb deliveries` each read it once from their configuration.
 */
export function recipientHasher(key: Secret | undefined): RecipientHasher {
  const normal = (value: string) => value.trim().toLowerCase();
  if (key === undefined) {
    return (value) => createHash('sha256').update(normal(value)).digest('hex').slice(0, 16);
  }
  const secret = key.reveal();
  return (value) => createHmac('sha256', secret).update(normal(value)).digest('hex').slice(0, 16);
}

/** The one line `geb run` logs when RECIPIENT_HASH_KEY is not set. */
export const UNKEYED_RECIPIENT_HASH_WARNING =
  'RECIPIENT_HASH_KEY is not set: recipient hashes in logs and the delivery history are an unkeyed SHA-256, which ' +
  'anyone with a list of addresses can reverse; set RECIPIENT_HASH_KEY (or RECIPIENT_HASH_KEY_FILE) to a random ' +
  'secret of at least 16 characters (e.g. `openssl rand -hex 32`) and give `geb deliveries` the same key';
