import { createHash } from 'node:crypto';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out whatever a caller passes. A second line of defence: callers log hashes and never raw
 * secrets, addresses or bodies in the first place, and Secret values already serialise as `[redacted]`.
 */
const REDACT_PATHS = [
  'clientSecret',
  '*.clientSecret',
  'accessToken',
  '*.accessToken',
  'access_token',
  '*.access_token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'body',
  '*.body',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'genesys-event-bridge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      // Every line written inside a span carries its ids, so a log line leads to its trace and back.
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
      },
    },
    destination,
  );
}

/**
 * A stable, non-reversible stand-in for personal data (an address, a phone number) that lets an SRE correlate log
 * lines and history records about the same recipient without the value itself. Addresses are case-folded first so
 * that `A@x.com` and `a@x.com` hash alike.
 */
export function personalDataHash(value: string): string {
  return createHash('sha256').update(value.trim().toLowerCase()).digest('hex').slice(0, 16);
}
