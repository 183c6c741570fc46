import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../secret.js';
import type { Route } from './server.js';

/**
 * Guards a route that serves more than probes do (the delivery history: Kafka keys, idempotency keys, recipient
 * hashes) with a bearer token. Without a token configured the route is off: an admin port reachable by anyone in the
 * cluster must not serve it by default.
 */
export function bearerProtected(
  token: Secret | undefined,
  route: Route,
  { variable }: { readonly variable: string },
): Route {
  if (token === undefined) {
    return () => ({
      status: 403,
      body: {
        code: 'ADMIN_TOKEN_NOT_SET',
        message: `this endpoint is off: set ${variable} (or ${variable}_FILE) to turn it on, then send "Authorization: Bearer <token>"`,
      },
    });
  }
  const expected = digest(token.reveal());
  return (request) => {
    const presented = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '')?.[1];
    // Compared as digests: equal lengths for timingSafeEqual, and no early exit that times out a prefix.
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      return {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="genesys-event-bridge admin"' },
        body: {
          code: 'UNAUTHORIZED',
          message:
            presented === undefined
              ? 'send "Authorization: Bearer <token>" with the token set in ' + variable
              : 'the bearer token is not the one set in ' + variable,
        },
      };
    }
    return route(request);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
