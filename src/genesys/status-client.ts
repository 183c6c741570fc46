import type { Got } from 'got';
import type { Models } from 'purecloud-platform-client-v2';
import type { Waits } from '../wait.js';
import { headerValue } from './http.js';
import { apiUrlOf } from './outbound-guard.js';
import type { RateLimiter } from './rate-limiter.js';
import type { TokenProvider } from './token-provider.js';

/**
 * The read-only Genesys calls that tell what became of a send (GENESYS.md, "What became of a send"). Every call takes
 * a background turn of the connection's rate budget (RateLimiter.acquireBackground): sends always go first. Answers
 * come back as they are, with their status; deciding what they mean is the status checker's (delivery/status.ts).
 */

export interface StatusClientOptions {
  readonly apiBaseUrl: string;
  readonly http: Got;
  readonly tokens: TokenProvider;
  readonly limiter?: Pick<RateLimiter, 'acquireBackground'>;
}

/** One answer: 2xx with its body, or an HTTP error status with Genesys' error code, or no answer (status 0). */
export type StatusAnswer<T> =
  | { readonly ok: true; readonly body: T; readonly correlationId: string | undefined }
  | {
      readonly ok: false;
      readonly status: number;
      /** Genesys' error code (e.g. `missing.permissions`) or the network error's code. */
      readonly code: string;
      readonly correlationId: string | undefined;
    };

/** Genesys' documented maximum of ids in one analytics multi-get is not known to us; 50 is conservative. */
export const MAX_IDS_PER_MULTI_GET = 50;

export class StatusClient {
  readonly #options: StatusClientOptions;

  constructor(options: StatusClientOptions) {
    this.#options = options;
  }

  /** `GET /api/v2/analytics/conversations/details?id=a&id=b`: needs analytics:conversationDetail:view. */
  analyticsDetails(
    conversationIds: readonly string[],
    hooks?: Waits,
  ): Promise<StatusAnswer<Models.AnalyticsConversationWithoutAttributesMultiGetResponse>> {
    // Repeated `id=` as the official SDK sends it (collection format `multi`); GENESYS.md writes `?id=a,b,c`.
    const ids = conversationIds.map((id) => `id=${encodeURIComponent(id)}`).join('&');
    return this.#call('GET', `/api/v2/analytics/conversations/details?${ids}`, undefined, hooks);
  }

  /** `POST /api/v2/analytics/conversations/details/query`. */
  analyticsQuery(
    query: Models.ConversationQuery,
    hooks?: Waits,
  ): Promise<StatusAnswer<Models.AnalyticsConversationQueryResponse>> {
    return this.#call('POST', '/api/v2/analytics/conversations/details/query', query, hooks);
  }

  /** `GET /api/v2/conversations/emails/{conversationId}`. */
  emailConversation(conversationId: string, hooks?: Waits): Promise<StatusAnswer<Models.EmailConversation>> {
    return this.#call(
      'GET',
      `/api/v2/conversations/emails/${encodeURIComponent(conversationId)}`,
      undefined,
      hooks,
    );
  }

  /** `GET /api/v2/conversations/messages/{conversationId}/messages/{messageId}`. */
  message(
    conversationId: string,
    messageId: string,
    hooks?: Waits,
  ): Promise<StatusAnswer<Models.MessageData>> {
    return this.#call(
      'GET',
      `/api/v2/conversations/messages/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}`,
      undefined,
      hooks,
    );
  }

  async #call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    hooks: Waits = {},
  ): Promise<StatusAnswer<T>> {
    const url = apiUrlOf(this.#options.apiBaseUrl, path);
    let token;
    try {
      token = await this.#options.tokens.getToken(hooks.waitSignal);
    } catch (error) {
      return {
        ok: false,
        status: 0,
        code: (error as { code?: string }).code ?? 'TOKEN_UNAVAILABLE',
        correlationId: undefined,
      };
    }
    await this.#options.limiter?.acquireBackground(hooks);
    try {
      const response = await this.#options.http(url, {
        method,
        ...(body !== undefined && { json: body }),
        headers: { authorization: `Bearer ${token.reveal()}` },
        responseType: 'text',
        ...(hooks.waitSignal && { signal: hooks.waitSignal }),
      });
      const correlationId = headerValue(response.headers, 'inin-correlation-id');
      const parsed = parse(response.body);
      if (response.statusCode === 401) this.#options.tokens.invalidate(token);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { ok: true, body: (parsed ?? {}) as T, correlationId };
      }
      const code = typeof parsed?.['code'] === 'string' ? parsed['code'] : `HTTP ${response.statusCode}`;
      return { ok: false, status: response.statusCode, code, correlationId };
    } catch (error) {
      if (hooks.waitSignal?.aborted) throw error;
      // got's errors carry the request (the bearer token): keep only the code.
      return {
        ok: false,
        status: 0,
        code: (error as { code?: string }).code ?? 'network error',
        correlationId: undefined,
      };
    }
  }
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
