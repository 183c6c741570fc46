/**
 * The one list of error codes the bridge can report. A code is stable: it appears in logs, dead-letter headers,
 * metrics and the delivery history, so dashboards and replays can filter on it. Renaming one is a breaking change.
 *
 * `disposition` says what a failure of this kind does to the event:
 * - `dead-letter`: only this event is wrong (bad data, a rule that cannot render it, Genesys refusing it). A retry
 *   cannot help; the event goes to the dead-letter topic and the partition moves on.
 * - `retry`: a transient fault (timeout, 5xx, 429). The same event is tried again later.
 * - `pause`: the bridge itself is misconfigured or Genesys is unreachable for everyone. Dead-lettering would empty the
 *   topic into the DLQ, so consumption stops and is probed until the cause is gone.
 * - `fatal`: the process cannot run at all (bad configuration, bad rules file at start-up).
 */
export type Disposition = 'dead-letter' | 'retry' | 'pause' | 'fatal';

export const ERROR_CODES = {
  CONFIG_INVALID: { disposition: 'fatal', summary: 'the configuration is invalid' },
  RULES_INVALID: { disposition: 'fatal', summary: 'the rules file is invalid' },
  TOPIC_MISSING: { disposition: 'fatal', summary: 'a topic the rules name does not exist' },
  KAFKA_AUTH_FAILED: { disposition: 'fatal', summary: 'Kafka refused the SASL credentials' },
  KAFKA_TLS_FAILED: { disposition: 'fatal', summary: 'the TLS connection to Kafka failed' },
  KAFKA_UNREACHABLE: { disposition: 'fatal', summary: 'Kafka could not be reached at start-up' },
  DECODE_FAILED: { disposition: 'dead-letter', summary: 'the event value could not be decoded' },
  EVENT_TOO_LARGE: {
    disposition: 'dead-letter',
    summary: 'the event value is larger than MAX_EVENT_BYTES; it is not decoded',
  },
  EVENT_PREPARE_FAILED: {
    disposition: 'dead-letter',
    summary:
      'an unexpected error while decoding, matching or rendering the event (a defect the event triggers); only this event is set aside',
  },
  TEMPLATE_VARIABLE_MISSING: {
    disposition: 'dead-letter',
    summary: 'a template names a field the event lacks',
  },
  TEMPLATE_RENDER_FAILED: { disposition: 'dead-letter', summary: 'a template could not be rendered' },
  TEMPLATE_LIMIT_EXCEEDED: {
    disposition: 'dead-letter',
    summary: "rendering a template for this event went over the template engine's time or memory limit",
  },
  INVALID_ADDRESS: { disposition: 'dead-letter', summary: 'a rendered address is not well formed' },
  INVALID_FIELD_VALUE: {
    disposition: 'dead-letter',
    summary: 'a rendered value is not valid for its field (e.g. a contact list id)',
  },
  GENESYS_LIMIT_EXCEEDED: {
    disposition: 'dead-letter',
    summary: "a rendered field breaks one of Genesys' documented limits (a length or a size)",
  },
  OUTBOUND_PATH_REFUSED: {
    disposition: 'dead-letter',
    summary: 'a request path would leave /api/v2/ of the configured Genesys API (outbound guard)',
  },
  GENESYS_REJECTED: { disposition: 'dead-letter', summary: 'Genesys refused the request as invalid' },
  GENESYS_INVALID_CLIENT: {
    disposition: 'pause',
    summary: 'the token endpoint refused the OAuth client (invalid_client)',
  },
  GENESYS_TOKEN_REFUSED: {
    disposition: 'pause',
    summary: 'the token endpoint refused the grant (e.g. unauthorized_client)',
  },
  GENESYS_UNAUTHORIZED: { disposition: 'pause', summary: 'Genesys refused a freshly issued token (401)' },
  GENESYS_FORBIDDEN: { disposition: 'pause', summary: "the OAuth client's role lacks a permission (403)" },
  GENESYS_RATE_LIMITED: { disposition: 'retry', summary: 'Genesys asked us to slow down (429)' },
  GENESYS_UNAVAILABLE: { disposition: 'retry', summary: 'Genesys answered with a server error or timeout' },
  GENESYS_UNREACHABLE: { disposition: 'retry', summary: 'Genesys could not be reached' },
  TOKEN_UNAVAILABLE: { disposition: 'retry', summary: 'no access token could be obtained' },
  DEAD_LETTER_FAILED: { disposition: 'retry', summary: 'the dead-letter topic could not be written' },
  KAFKA_CONSUMER_CRASHED: {
    disposition: 'fatal',
    summary: 'the Kafka consumer crashed and will not restart',
  },
  LEDGER_UNAVAILABLE: { disposition: 'retry', summary: 'the delivery ledger could not be read or written' },
  RATE_LIMIT_STORE_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'the shared rate-limit store (Redis) could not be reached',
  },
  SCHEMA_NOT_FOUND: {
    disposition: 'dead-letter',
    summary: "the schema id in the value's framing is unknown to the schema registry",
  },
  REGISTRY_UNAVAILABLE: {
    disposition: 'pause',
    summary: 'the schema registry could not be reached or answered with a server error, after retries',
  },
  REGISTRY_UNAUTHORIZED: { disposition: 'pause', summary: 'the schema registry refused our credentials' },
  REGISTRY_NOT_CONFIGURED: {
    disposition: 'pause',
    summary: 'a value is in the schema registry wire format but SCHEMA_REGISTRY_URL is not set',
  },
} as const satisfies Record<string, { disposition: Disposition; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface BridgeErrorOptions {
  /** HTTP status of the response that caused it, when there was one. */
  status?: number;
  /** Genesys' ININ-Correlation-Id of the failed call: what Genesys support asks for. */
  correlationId?: string;
  /** For 429: how long Genesys asked us to wait. */
  retryAfterMs?: number;
  /** ININ-Correlation-Id of every HTTP call this failure took (e.g. the call and its retry after a 401), in order. */
  correlationIds?: readonly string[];
  /** The underlying error. Only errors whose message is known to be free of secrets and personal data. */
  cause?: Error;
}

/**
 * Every failure the pipeline reasons about. Messages must never contain secrets, tokens, addresses, phone numbers or
 * bodies: they are written to logs and dead-letter headers as they are.
 */
export class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly correlationId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly correlationIds: readonly string[];

  constructor(code: ErrorCode, message: string, options: BridgeErrorOptions = {}) {
    super(message, options.cause ? { cause: options.cause } : undefined);
    this.name = 'BridgeError';
    this.code = code;
    this.status = options.status;
    this.correlationId = options.correlationId;
    this.retryAfterMs = options.retryAfterMs;
    this.correlationIds =
      options.correlationIds ?? (options.correlationId !== undefined ? [options.correlationId] : []);
  }

  get disposition(): Disposition {
    return ERROR_CODES[this.code].disposition;
  }

  /** Whether trying the same thing again later can succeed without anyone changing anything. */
  get retryable(): boolean {
    return this.disposition === 'retry' || this.disposition === 'pause';
  }
}

export function isBridgeError(error: unknown): error is BridgeError {
  return error instanceof BridgeError;
}

/** Thrown when the shutdown signal aborts a wait or a call: not a failure of the event. */
export class ShutdownError extends Error {
  constructor() {
    super('shutting down');
    this.name = 'ShutdownError';
  }
}
