import type { Got } from 'got';
import { BridgeError, ShutdownError } from '../errors.js';
import { Secret } from '../secret.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { SpanKind, inSpan } from '../telemetry/tracing.js';

export interface TokenProviderOptions {
  /** Full token URL: `https://login.<region>/oauth/token` or the override. */
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
  readonly http: Got;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly now?: () => number;
}

interface CachedToken {
  readonly token: Secret;
  readonly expiresAtMs: number;
  /** From here on a new token is fetched in the background while the current one is still handed out. */
  readonly refreshAtMs: number;
}

/** Never refresh later than this before expiry, and never wait longer than this ahead. */
const MIN_REFRESH_AHEAD_MS = 5_000;
const MAX_REFRESH_AHEAD_MS = 5 * 60_000;

/**
 * OAuth client-credentials tokens for one Genesys OAuth client. Tokens are cached until shortly before they expire
 * and refreshed ahead of time; however many calls wait, at most one token request is in flight. Genesys issues no
 * refresh token for this grant, so "refresh" is simply a new grant.
 */
export class TokenProvider {
  readonly #options: TokenProviderOptions;
  readonly #now: () => number;
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;
  #fetchCount = 0;

  constructor(options: TokenProviderOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** How many token requests were made: for tests and metrics. */
  get fetchCount(): number {
    return this.#fetchCount;
  }

  /** A token valid now. Waits for a new one only when there is no unexpired token at hand. */
  async getToken(signal?: AbortSignal): Promise<Secret> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached && now < cached.expiresAtMs) {
      if (now >= cached.refreshAtMs) this.#refreshInBackground();
      return cached.token;
    }
    const fresh = await abortable(this.#singleFlight(), signal);
    return fresh.token;
  }

  /**
   * Called when the API answered 401 to `token`: drop it so the next getToken fetches a new one. A 401 on a token
   * already replaced is ignored, so a burst of 401s from concurrent calls costs one token request, not many.
   */
  invalidate(token: Secret): void {
    if (this.#cached?.token === token) this.#cached = undefined;
  }

  #refreshInBackground(): void {
    this.#singleFlight().catch((error: unknown) => {
      // The current token is still valid; the next call past expiry will surface the error.
      this.#options.logger.warn({ code: (error as BridgeError).code }, 'background token refresh failed');
    });
  }

  #singleFlight(): Promise<CachedToken> {
    this.#inflight ??= this.#tracedFetch().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /** The token request as its own CLIENT span; the span and the metric carry the outcome, never the token. */
  #tracedFetch(): Promise<CachedToken> {
    const url = new URL(this.#options.tokenUrl);
    const attributes = {
      'http.request.method': 'POST',
      'url.template': url.pathname,
      'server.address': url.hostname,
    };
    return inSpan('POST /oauth/token', { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const started = performance.now();
      try {
        const token = await this.#fetch();
        this.#options.metrics?.tokenRequests.inc({ outcome: 'ok' });
        span.setAttribute('http.response.status_code', 200);
        return token;
      } catch (error) {
        this.#options.metrics?.tokenRequests.inc({ outcome: (error as BridgeError).code ?? 'error' });
        const status = (error as BridgeError).status;
        if (status !== undefined) span.setAttribute('http.response.status_code', status);
        throw error;
      } finally {
        this.#options.metrics?.genesysRequestDuration.observe(
          { route: '/oauth/token', status: 'all' },
          (performance.now() - started) / 1000,
        );
      }
    });
  }

  async #fetch(): Promise<CachedToken> {
    const { tokenUrl, clientId, clientSecret, http, logger } = this.#options;
    this.#fetchCount += 1;
    const basic = Buffer.from(`${clientId}:${clientSecret.reveal()}`).toString('base64');
    const started = this.#now();
    let response;
    try {
      response = await http.post(tokenUrl, {
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
        responseType: 'text',
      });
    } catch (error) {
      // got's errors carry the request options, Authorization header included: never pass them on.
      const reason = (error as { code?: string }).code ?? 'network error';
      throw new BridgeError('TOKEN_UNAVAILABLE', `token request to ${tokenUrl} failed: ${reason}`);
    }

    const status = response.statusCode;
    const body = parseJson(response.body);
    if (status === 200) {
      const accessToken = body?.['access_token'];
      const tokenType = body?.['token_type'];
      const expiresIn = body?.['expires_in'];
      if (
        typeof accessToken !== 'string' ||
        accessToken === '' ||
        typeof expiresIn !== 'number' ||
        !(expiresIn > 0) ||
        (typeof tokenType === 'string' && tokenType.toLowerCase() !== 'bearer')
      ) {
        throw new BridgeError(
          'TOKEN_UNAVAILABLE',
          `token endpoint ${tokenUrl} answered 200 without a usable bearer token`,
        );
      }
      const lifetimeMs = expiresIn * 1000;
      const aheadMs = Math.min(MAX_REFRESH_AHEAD_MS, Math.max(MIN_REFRESH_AHEAD_MS, lifetimeMs / 10));
      const expiresAtMs = started + lifetimeMs;
      const cached: CachedToken = {
        token: new Secret(accessToken),
        expiresAtMs,
        refreshAtMs: Math.max(started, expiresAtMs - aheadMs),
      };
      this.#cached = cached;
      logger.debug({ expiresInS: expiresIn }, 'obtained Genesys access token');
      return cached;
    }

    const oauthError =
      typeof body?.['error'] === 'string' ? body['error'].replace(/[^a-z_]/gi, '') : undefined;
    if (oauthError === 'invalid_client') {
      throw new BridgeError(
        'GENESYS_INVALID_CLIENT',
        `Genesys token endpoint ${tokenUrl} refused OAuth client "${clientId}" (invalid_client, HTTP ${status}): ` +
          'check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, and that GENESYS_REGION is the region the OAuth client was created in',
        { status },
      );
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      throw new BridgeError(
        'GENESYS_TOKEN_REFUSED',
        `Genesys token endpoint ${tokenUrl} refused the client-credentials grant for "${clientId}" ` +
          `(${oauthError ?? 'no OAuth error code'}, HTTP ${status})`,
        { status },
      );
    }
    throw new BridgeError('TOKEN_UNAVAILABLE', `token endpoint ${tokenUrl} answered HTTP ${status}`, {
      status,
    });
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for `promise` unless `signal` aborts first; the shared promise itself keeps running for other callers. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new ShutdownError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ShutdownError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
