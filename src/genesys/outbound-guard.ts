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

/**
 * What a header field (a subject, a friendly name, an id) loses: every Unicode control character (C0 and C1: NUL,
 * TAB, VT, FF, CR, LF, NEL U+0085 …) and the line and paragraph separators U+2028/U+2029. Any of them may end a
 * header line in some mail or SMS gateway, and so let an event inject headers, or hide text from a reader.
 */
const HEADER_BREAKING = /[\p{Cc}\p{Zl}\p{Zp}]+/gu;

/**
 * What an address (an email address, a phone number, a messaging id) must not hold: the above, and every invisible
 * format character (`Cf`): zero-width space/joiners U+200B–U+200D, word joiner U+2060, BOM U+FEFF, the
 * bidirectional marks, embeddings, overrides and isolates U+200E/U+200F, U+202A–U+202E, U+2066–U+2069, U+061C. They
 * make an address look like another one, or break it in a gateway; no real address needs them, so it is refused.
 */
const ADDRESS_FORBIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** A header field's text with each run of control characters and line/paragraph separators made one space. */
export function headerText(value: string): string {
  return value.replace(HEADER_BREAKING, ' ').trim();
}

/**
 * Refuses an address that holds a control, zero-width or bidirectional formatting character (INVALID_ADDRESS: only
 * this event is wrong). The message names the field and the code point, never the address.
 */
export function checkAddressCharacters(value: string, field: string): void {
  const found = ADDRESS_FORBIDDEN.exec(value)?.[0];
  if (found !== undefined) {
    const codePoint = `U+${(found.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw new BridgeError(
      'INVALID_ADDRESS',
      `${field}: the address holds an invisible or control character (${codePoint}); not sent`,
    );
  }
}
