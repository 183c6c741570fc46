import type { Got } from 'got';
import { isBridgeError } from '../errors.js';
import type { Connection } from '../rules/connection.js';
import { sameConnection } from '../rules/connection.js';
import type { Secret } from '../secret.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { GenesysClient } from './client.js';
import { ContactBatcher, type GenesysSender } from './contact-batcher.js';
import { RateLimiter } from './rate-limiter.js';
import { StatusClient } from './status-client.js';
import { TokenProvider } from './token-provider.js';

/** Where and as whom to call Genesys: the GENESYS_* variables, or a connection of the rules file. */
export interface ConnectionSettings {
  readonly apiBaseUrl: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
}

/** Client-side rate budgets (see rate-limiter.ts); RATE_LIMIT_* in the configuration. */
export interface RateLimitSettings {
  /** Calls per window per OAuth client token. */
  readonly perClient: number;
  /** Agentless emails per window for the whole organisation. */
  readonly agentlessEmailOrg: number;
  readonly windowMs: number;
  /** Set: the organisation-wide budgets are shared through this Redis. */
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
}

export interface ConnectionDeps {
  readonly http: Got;
  readonly rateLimits: RateLimitSettings;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** One OAuth client's token, budgets and client: budgets are per token, and another client may be another org. */
export interface GenesysConnection {
  readonly tokens: TokenProvider;
  readonly limiter: RateLimiter;
  readonly client: GenesysClient;
  /** What the pipeline sends through: the client behind a contact batcher. */
  readonly sender: GenesysSender;
  /** Delivery status checks, on the same token and at a lower priority in the same budget. */
  readonly statusClient: StatusClient;
}

/** `redisKeyPrefix`: a named connection's organisation budgets must not be shared with another organisation's. */
export function createGenesysConnection(
  settings: ConnectionSettings,
  deps: ConnectionDeps,
  redisKeyPrefix = deps.rateLimits.redisKeyPrefix,
): GenesysConnection {
  const { rateLimits, logger, metrics, http } = deps;
  const tokens = new TokenProvider({
    tokenUrl: settings.tokenUrl,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    http,
    logger: logger.child({ component: 'token-provider' }),
    metrics,
  });
  const limiter = new RateLimiter({
    perClient: { limit: rateLimits.perClient, windowMs: rateLimits.windowMs },
    orgByAction: { agentlessEmail: { limit: rateLimits.agentlessEmailOrg, windowMs: rateLimits.windowMs } },
    redisUrl: rateLimits.redisUrl,
    redisKeyPrefix,
    logger: logger.child({ component: 'rate-limiter' }),
  });
  const client = new GenesysClient({ apiBaseUrl: settings.apiBaseUrl, http, tokens, limiter, metrics });
  const statusClient = new StatusClient({ apiBaseUrl: settings.apiBaseUrl, http, tokens, limiter });
  return { tokens, limiter, client, sender: new ContactBatcher(client), statusClient };
}

/**
 * The rules file's connections, built on first use and rebuilt when a reload changes one, so that a reload may add
 * or change connections without a restart. A rule without a connection uses `fallback`.
 */
export class GenesysConnections {
  readonly #built = new Map<string, { connection: Connection; built: GenesysConnection }>();

  constructor(
    readonly fallback: GenesysConnection,
    private readonly deps: ConnectionDeps,
  ) {}

  connectionFor(connection: Connection | undefined): GenesysConnection {
    if (connection === undefined) return this.fallback;
    const known = this.#built.get(connection.name);
    if (known && sameConnection(known.connection, connection)) return known.built;
    if (known) void known.built.limiter.close().catch(() => {});
    const log = this.deps.logger.child({ connection: connection.name });
    const built = createGenesysConnection(
      connection,
      { ...this.deps, logger: log },
      `${this.deps.rateLimits.redisKeyPrefix}connection:${connection.name}:`,
    );
    this.#built.set(connection.name, { connection, built });
    // As for the default client: a wrong secret or region shows in the log now, not at the first event.
    built.tokens.getToken().then(
      () => log.info({ tokenUrl: connection.tokenUrl }, 'Genesys OAuth client accepted'),
      (error: unknown) =>
        isBridgeError(error)
          ? log.error({ code: error.code }, error.message)
          : log.error({ err: error }, 'token request failed'),
    );
    return built;
  }

  senderFor(connection: Connection | undefined): GenesysSender {
    return this.connectionFor(connection).sender;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#built.values()].map(({ built }) => built.limiter.close()));
  }
}
