import type { Got } from 'got';
import { BridgeError, ShutdownError } from '../errors.js';
import { SpanStatusCode } from '@opentelemetry/api';
import type { Metrics } from '../telemetry/metrics.js';
import { SpanKind, headersFromContext, inSpan } from '../telemetry/tracing.js';
import { RetryAfterGate } from './backpressure.js';
import type { Waits } from '../wait.js';
import { headerValue } from './http.js';
import { apiUrlOf } from './outbound-guard.js';
import type { RateLimiter } from './rate-limiter.js';
import type { TokenProvider } from './token-provider.js';

export interface GenesysRequest {
  readonly method: 'POST';
  /** Path below the API base URL, starting with `/api/v2/`. */
  readonly path: string;
  readonly body: unknown;
}

export interface GenesysResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** ININ-Correlation-Id of the call that succeeded. */
  readonly correlationId: string | undefined;
  /** HTTP calls made, including a retry after a 401. */
  readonly calls: number;
  /** ININ-Correlation-Id of every call made, in order (the last is `correlationId`). */
  readonly correlationIds: readonly string[];
  /** Milliseconds spent waiting for the rate budgets and for a Retry-After before calling. */
  readonly waitedMs: number;
}

export interface GenesysClientOptions {
  readonly apiBaseUrl: string;
  readonly http: Got;
  readonly tokens: TokenProvider;
  /** Budgets acquired before every call; none: no client-side limit. */
  readonly limiter?: Pick<RateLimiter, 'acquire'>;
  readonly metrics?: Metrics;
}

/** When a 429 comes without a usable Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

const CORRELATION_HEADER = 'inin-correlation-id';

/**
 * Calls the Genesys Cloud API with the client-credentials token. One call per `send`, plus exactly one more when the
 * token was refused (401): tokens can be revoked or idle out early. Every other failure becomes a BridgeError whose
 * code decides, in one place (delivery/outcome.ts), whether to retry, dead-letter or pause.
 *
 * Before every call it waits out a Retry-After that any earlier call of this OAuth client was given, then acquires
 * the rate budgets; a 429 closes that gate for every call of the client. Waits honour `hooks` (abort on stop,
 * heartbeat meanwhile); the call itself is aborted only by `signal`.
 */
export class GenesysClient {
  readonly #options: GenesysClientOptions;
  readonly #gate = new RetryAfterGate();

  constructor(options: GenesysClientOptions) {
    this.#options = options;
  }

  /** Milliseconds until calls may go again after a 429 (0: open). */
  get retryAfterLeftMs(): number {
    return this.#gate.msLeft();
  }

  async send(request: GenesysRequest, signal?: AbortSignal, hooks: Waits = {}): Promise<GenesysResponse> {
    let calls = 0;
    let waitedMs = 0;
    const correlationIds: string[] = [];
    // Before a token or a budget is spent on it: a path outside the API is refused outright.
    const url = apiUrlOf(this.#options.apiBaseUrl, request.path);
    for (;;) {
      const token = await this.#options.tokens.getToken(signal);
      waitedMs += await this.#gate.pass(hooks);
      if (this.#options.limiter) {
        for (;;) {
          waitedMs += await this.#options.limiter.acquire(request.path, hooks);
          // A 429 may have come in while this call waited for its budget. Its turn has then passed: it takes a new
          // one once the gate opens. Going on the old turn would send every call held at the gate at once when it
          // opens, and with the pace that follows they would overrun the window after (one 429 would breed the next).
          const held = await this.#gate.pass(hooks);
          waitedMs += held;
          if (held === 0) break;
        }
      }
      calls += 1;
      const { status, headers, body, correlationId } = await this.#call(
        request,
        url,
        token.reveal(),
        calls,
        signal,
        correlationIds,
      );
      if (correlationId !== undefined) correlationIds.push(correlationId);
      if (status === 401 && calls === 1) {
        this.#options.tokens.invalidate(token);
        continue;
      }
      if (waitedMs > 0) this.#options.metrics?.rateLimitWait.observe({ limiter: 'genesys' }, waitedMs / 1000);
      if (status >= 200 && status < 300) {
        return { status, body: body ?? {}, correlationId, calls, correlationIds, waitedMs };
      }
      const error = errorFromResponse(request, status, body, headers, correlationId, correlationIds);
      if (error.code === 'GENESYS_RATE_LIMITED')
        this.#gate.block(error.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
      throw error;
    }
  }

  /** One HTTP attempt, as one CLIENT span carrying the status, the attempt number and Genesys' ids. */
  #call(
    request: GenesysRequest,
    url: string,
    accessToken: string,
    attempt: number,
    signal: AbortSignal | undefined,
    correlationIds: readonly string[],
  ) {
    const route = routeOf(request.path);
    const attributes = {
      'http.request.method': request.method,
      'url.template': route,
      'server.address': this.#host,
      'geb.attempt': attempt,
    };
    return inSpan(`${request.method} ${route}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const started = performance.now();
      let statusLabel = 'network_error';
      try {
        const response = await this.#options.http(url, {
          method: request.method,
          json: request.body,
          headers: { ...headersFromContext(), authorization: `Bearer ${accessToken}` },
          responseType: 'text',
          signal,
        });
        statusLabel = String(response.statusCode);
        const correlationId = headerValue(response.headers, CORRELATION_HEADER);
        const body = parseBody(response.body);
        span.setAttribute('http.response.status_code', response.statusCode);
        if (correlationId) span.setAttribute('genesys.correlation_id', correlationId);
        const conversationId = body?.['conversationId'];
        if (typeof conversationId === 'string') span.setAttribute('genesys.conversation.id', conversationId);
        if (response.statusCode >= 400) {
          span.setAttribute('error.type', statusLabel);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        return { status: response.statusCode, headers: response.headers, body, correlationId };
      } catch (error) {
        if (signal?.aborted) throw new ShutdownError();
        // got's errors carry the request options (the bearer token, the body): keep only the error code.
        const code = (error as { code?: string }).code ?? 'network error';
        const kind = code === 'ETIMEDOUT' ? 'GENESYS_UNAVAILABLE' : 'GENESYS_UNREACHABLE';
        throw new BridgeError(kind, `${request.method} ${route} failed: ${code}`, {
          correlationIds: [...correlationIds],
        });
      } finally {
        this.#options.metrics?.genesysRequestDuration.observe(
          { route, status: statusLabel },
          (performance.now() - started) / 1000,
        );
      }
    });
  }

  get #host(): string {
    return new URL(this.#options.apiBaseUrl).hostname;
  }
}

/** Turns a Genesys error response into a BridgeError. The message holds codes and field names, never values. */
export function errorFromResponse(
  request: GenesysRequest,
  status: number,
  body: Record<string, unknown> | undefined,
  headers: Record<string, string | string[] | undefined>,
  correlationId: string | undefined,
  correlationIds: readonly string[] = correlationId !== undefined ? [correlationId] : [],
): BridgeError {
  const genesysCode = typeof body?.['code'] === 'string' ? body['code'] : undefined;
  const fields = Array.isArray(body?.['details'])
    ? (body['details'] as unknown[])
        .map((d) => (d && typeof d === 'object' ? (d as Record<string, unknown>)['fieldName'] : undefined))
        .filter((f): f is string => typeof f === 'string')
    : [];
  const what =
    `${request.method} ${routeOf(request.path)} answered HTTP ${status}` +
    (genesysCode ? ` (${genesysCode})` : '') +
    (fields.length > 0 ? ` for ${fields.join(', ')}` : '') +
    (correlationId ? `, ININ-Correlation-Id ${correlationId}` : '');
  const options = { status, correlationId, correlationIds: [...correlationIds] };

  if (status === 401)
    return new BridgeError('GENESYS_UNAUTHORIZED', `${what} with a freshly issued token`, options);
  if (status === 403) return new BridgeError('GENESYS_FORBIDDEN', what, options);
  if (status === 429) {
    return new BridgeError('GENESYS_RATE_LIMITED', what, {
      ...options,
      retryAfterMs: retryAfterMs(headers, body),
    });
  }
  if (status === 408 || status >= 500) return new BridgeError('GENESYS_UNAVAILABLE', what, options);
  return new BridgeError('GENESYS_REJECTED', what, options);
}

/** Retry-After in seconds, or the `[42]` in the 429 message when a proxy dropped the header. */
function retryAfterMs(
  headers: Record<string, string | string[] | undefined>,
  body: Record<string, unknown> | undefined,
): number | undefined {
  const header = headerValue(headers, 'retry-after');
  const seconds = header !== undefined ? Number(header) : NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const message = typeof body?.['message'] === 'string' ? body['message'] : '';
  const match = /\[(\d+)\]/.exec(message);
  return match?.[1] ? Number(match[1]) * 1000 : undefined;
}

/** The path with ids replaced, so that messages and span names stay free of identifiers. */
export function routeOf(path: string): string {
  return path.replace(/\/contactlists\/[^/]+/, '/contactlists/{contactListId}').replace(/\?.*$/, '');
}

function parseBody(text: string): Record<string, unknown> | undefined {
  if (text === '') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { items: value };
  } catch {
    return undefined;
  }
}
