import { GENESYS_REGIONS, apiBaseUrlOf, isGenesysRegion, loginBaseUrlOf } from '../regions.js';
import { Secret } from '../secret.js';

/** A named Genesys OAuth client declared in the rules file (`connections:`), resolved against the environment. */
export interface Connection {
  readonly name: string;
  readonly apiBaseUrl: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
}

export interface RawConnection {
  readonly region?: string;
  readonly apiUrl?: string;
  readonly loginUrl?: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** A connection field that cannot be used; `field` is its key, for the line and column. */
export class ConnectionDefinitionError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectionDefinitionError';
  }
}

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * The only environment variables a rules file may read. The prefix is fixed, so the operator decides what a rules
 * file sees by what they set under it; the bridge's own secrets (GENESYS_CLIENT_SECRET, KAFKA_SASL_PASSWORD…) are out
 * of reach.
 */
export const RULES_ENV_PREFIX = 'GEB_RULES_';

/** Hosts a connection may name without the operator's leave: Genesys' own API and login hosts, over https. */
const GENESYS_HOSTS = new Set(
  GENESYS_REGIONS.flatMap((r) => [new URL(apiBaseUrlOf(r)).host, new URL(loginBaseUrlOf(r)).host]),
);

const ALLOWED_HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/;

/** GENESYS_ALLOWED_HOSTS: comma-separated `host` (any port) or `host:port` entries, lower-cased. */
export function parseAllowedHosts(text: string): string[] {
  return text
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '');
}

/** Entries of GENESYS_ALLOWED_HOSTS that are not a host or host:port (for the configuration check). */
export function invalidAllowedHosts(text: string): string[] {
  return parseAllowedHosts(text).filter((entry) => !ALLOWED_HOST.test(entry));
}

/**
 * Whether a connection may send its credentials to `url`: https to a Genesys host, or http(s) to a host the operator
 * allows (an entry with a port allows that port only).
 */
function hostAllowed(url: URL, allowedHosts: readonly string[]): boolean {
  if (url.username !== '' || url.password !== '') return false;
  if (url.protocol === 'https:' && url.port === '' && GENESYS_HOSTS.has(url.hostname)) return true;
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  const host = url.host.toLowerCase();
  const hostname = url.hostname.toLowerCase();
  return allowedHosts.some((entry) =>
    ALLOWED_HOST.exec(entry)?.[2] === undefined ? entry === hostname : entry === host,
  );
}

/**
 * Resolves one connection. `${NAME}` is read from `env` only, so that secrets never sit in the rules file: the client
 * secret must be written that way. Only GEB_RULES_* names are read, and no message quotes a value read from the
 * environment. URLs must be https Genesys hosts, or hosts in `allowedHosts`. Every problem is returned, not just the
 * first.
 */
export function resolveConnection(
  name: string,
  raw: RawConnection,
  env: NodeJS.ProcessEnv,
  allowedHosts: readonly string[] = [],
): Connection | ConnectionDefinitionError[] {
  const problems: ConnectionDefinitionError[] = [];
  const value = (field: keyof RawConnection, mustReference: boolean) =>
    referenced(raw, field, mustReference, env, problems);
  const region = value('region', false);
  const apiUrl = value('apiUrl', false);
  const loginUrl = value('loginUrl', false);
  const clientId = value('clientId', false);
  const clientSecret = value('clientSecret', true);
  if (region !== undefined && !isGenesysRegion(region)) {
    // A value from the environment is never quoted: a rules author could name a secret to have it printed.
    const what = raw.region === region ? `"${region}"` : `the value of ${raw.region ?? 'the variable'}`;
    problems.push(
      new ConnectionDefinitionError(
        'region',
        `${what} is not a Genesys Cloud region; use one of ${GENESYS_REGIONS.join(', ')}`,
      ),
    );
  }
  if (raw.region === undefined && (raw.apiUrl === undefined || raw.loginUrl === undefined)) {
    problems.push(new ConnectionDefinitionError('', 'needs a region, or both apiUrl and loginUrl'));
  }
  for (const [field, url] of [
    ['apiUrl', apiUrl],
    ['loginUrl', loginUrl],
  ] as const) {
    if (url === undefined) continue;
    const parsed = urlOf(url);
    if (parsed === undefined || !['http:', 'https:'].includes(parsed.protocol)) {
      problems.push(new ConnectionDefinitionError(field, 'must be an http(s) URL'));
    } else if (!hostAllowed(parsed, allowedHosts)) {
      problems.push(
        new ConnectionDefinitionError(
          field,
          'must be an https URL of a Genesys Cloud host (api.<region> or login.<region>); other hosts only if the operator lists them in GENESYS_ALLOWED_HOSTS',
        ),
      );
    }
  }
  if (problems.length > 0 || clientId === undefined || clientSecret === undefined) return problems;
  const known = region !== undefined && isGenesysRegion(region) ? region : undefined;
  const api = apiUrl ?? (known ? apiBaseUrlOf(known) : '');
  const login = loginUrl ?? (known ? loginBaseUrlOf(known) : '');
  return {
    name,
    apiBaseUrl: api.replace(/\/+$/, ''),
    tokenUrl: `${login.replace(/\/+$/, '')}/oauth/token`,
    clientId,
    clientSecret: new Secret(clientSecret),
  };
}

/** A field's value, `${NAME}` read from `env` (GEB_RULES_* only); a problem is pushed, never the value quoted. */
function referenced(
  raw: RawConnection,
  field: keyof RawConnection,
  mustReference: boolean,
  env: NodeJS.ProcessEnv,
  problems: ConnectionDefinitionError[],
): string | undefined {
  const text = raw[field];
  if (text === undefined) return undefined;
  const reference = ENV_REFERENCE.exec(text)?.[1];
  if (reference === undefined) {
    if (mustReference) {
      // The value itself is never echoed: it may be a pasted secret.
      problems.push(
        new ConnectionDefinitionError(
          field,
          `must name an environment variable ("\${NAME}"), so that the secret is not written in the rules file`,
        ),
      );
      return undefined;
    }
    return text;
  }
  if (!reference.startsWith(RULES_ENV_PREFIX)) {
    problems.push(
      new ConnectionDefinitionError(
        field,
        `"\${${reference}}" is refused: a rules file may only read environment variables whose names start with ${RULES_ENV_PREFIX}`,
      ),
    );
    return undefined;
  }
  const resolved = env[reference];
  if (resolved === undefined || resolved === '') {
    problems.push(new ConnectionDefinitionError(field, `environment variable ${reference} is not set`));
    return undefined;
  }
  return resolved;
}

/** Whether two resolutions name the same OAuth client at the same place (a reload may change either). */
export function sameConnection(a: Connection, b: Connection): boolean {
  return (
    a.apiBaseUrl === b.apiBaseUrl &&
    a.tokenUrl === b.tokenUrl &&
    a.clientId === b.clientId &&
    a.clientSecret.reveal() === b.clientSecret.reveal()
  );
}

function urlOf(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
