import { GENESYS_REGIONS, apiBaseUrlOf, isGenesysRegion, loginBaseUrlOf } from '../genesys/regions.js';
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
 * Resolves one connection. `${NAME}` is read from `env` only, so that secrets never sit in the rules file: the client
 * secret must be written that way. Every problem is returned, not just the first.
 */
export function resolveConnection(
  name: string,
  raw: RawConnection,
  env: NodeJS.ProcessEnv,
): Connection | ConnectionDefinitionError[] {
  const problems: ConnectionDefinitionError[] = [];
  const value = (field: keyof RawConnection, mustReference: boolean): string | undefined => {
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
    const resolved = env[reference];
    if (resolved === undefined || resolved === '') {
      problems.push(new ConnectionDefinitionError(field, `environment variable ${reference} is not set`));
      return undefined;
    }
    return resolved;
  };
  const region = value('region', false);
  const apiUrl = value('apiUrl', false);
  const loginUrl = value('loginUrl', false);
  const clientId = value('clientId', false);
  const clientSecret = value('clientSecret', true);
  if (region !== undefined && !isGenesysRegion(region)) {
    problems.push(
      new ConnectionDefinitionError(
        'region',
        `"${region}" is not a Genesys Cloud region; use one of ${GENESYS_REGIONS.join(', ')}`,
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
    if (url !== undefined && !isHttpUrl(url)) {
      problems.push(new ConnectionDefinitionError(field, 'must be an http(s) URL'));
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

/** Whether two resolutions name the same OAuth client at the same place (a reload may change either). */
export function sameConnection(a: Connection, b: Connection): boolean {
  return (
    a.apiBaseUrl === b.apiBaseUrl &&
    a.tokenUrl === b.tokenUrl &&
    a.clientId === b.clientId &&
    a.clientSecret.reveal() === b.clientSecret.reveal()
  );
}

function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}
