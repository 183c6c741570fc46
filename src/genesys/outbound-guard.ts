import { BridgeError } from '../errors.js';

/** What a request path may hold: unreserved characters, percent escapes and slashes, then an optional query. */
const API_PATH = /^\/api\/v2\/[A-Za-z0-9\-._~%/]+(\?[A-Za-z0-9\-._~%&=]*)?$/;
/** `.`/`..` segments, literally or percent-encoded (WHATWG URL parsers resolve `%2e%2e` like `..`). */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|\?|$)/i;
/** An encoded slash or backslash: some servers and proxies decode them into path separators. */
const ENCODED_SEPARATOR = /%2f|%5c/i;

/**
 * The URL of an API call: the configured API base URL and a path below its `/api/v2/`, nothing else. Whatever a
 * future action renders into a path, the call cannot leave the configured host or the API, nor climb out of it.
 */
export function apiUrlOf(apiBaseUrl: string, path: string): string {
  const url = `${apiBaseUrl}${path}`;
  if (
    !API_PATH.test(path) ||
    DOT_SEGMENT.test(path) ||
    ENCODED_SEPARATOR.test(path) ||
    path.includes('//') ||
    !staysBelow(apiBaseUrl, url)
  ) {
    // Neither the path nor the URL is quoted: they may carry whatever an event put there.
    throw new BridgeError(
      'OUTBOUND_PATH_REFUSED',
      'the request path does not stay below /api/v2/ of the configured Genesys API URL; not sent',
    );
  }
  return url;
}

function staysBelow(apiBaseUrl: string, url: string): boolean {
  try {
    const base = new URL(apiBaseUrl);
    const target = new URL(url);
    const prefix = `${base.pathname.replace(/\/+$/, '')}/api/v2/`;
    return target.origin === base.origin && target.pathname.startsWith(prefix);
  } catch {
    return false;
  }
}
