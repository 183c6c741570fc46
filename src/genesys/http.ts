import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { got, type Got } from 'got';

export interface HttpOptions {
  readonly requestTimeoutMs: number;
}

/**
 * The one got instance the Genesys token provider and API client share: keep-alive (a TLS handshake per send would
 * cost more than the send), a hard timeout on every call, no got retries (retry decisions are ours: got cannot know
 * an email must not be sent twice) and no throwing on HTTP errors (every status is classified in one place).
 */
export function createHttp(options: HttpOptions): Got {
  return got.extend({
    agent: {
      http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
    },
    timeout: { request: options.requestTimeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    headers: { 'user-agent': 'genesys-event-bridge' },
  });
}

export function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
