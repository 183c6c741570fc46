import { readFileSync } from 'node:fs';
import { BridgeError } from './errors.js';
import { GENESYS_REGIONS, apiBaseUrlOf, isGenesysRegion, loginBaseUrlOf } from './genesys/regions.js';
import { Secret } from './secret.js';

/**
 * Configuration comes from environment variables only, parsed once at start-up into a frozen object.
 * Every variable is declared in VARIABLES below, which is also what the README's reference is checked against.
 */

export type StartFrom = 'earliest' | 'latest';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly groupId: string;
    readonly startFrom: StartFrom;
  };
  readonly rulesFile: string;
  /** `{topic}` is replaced by the source topic. */
  readonly deadLetterTopic: string;
  readonly genesys: {
    readonly region: string | undefined;
    readonly apiBaseUrl: string;
    readonly tokenUrl: string;
    readonly clientId: string;
    readonly clientSecret: Secret;
    readonly requestTimeoutMs: number;
  };
  readonly logLevel: LogLevel;
  /** Client-side rate budgets: see genesys/rate-limiter.ts. */
  readonly rateLimits: {
    /** Calls per window per OAuth client token. */
    readonly perClient: number;
    /** Agentless emails per window for the whole organisation. */
    readonly agentlessEmailOrg: number;
    readonly windowMs: number;
    /** Set: the organisation-wide budgets are shared through this Redis. */
    readonly redisUrl: string | undefined;
    readonly redisKeyPrefix: string;
  };
  /** How long transient Genesys failures are retried before they count as systemic (delivery/retry-policy.ts). */
  readonly retry: {
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
    readonly maxAttempts: number;
    readonly maxAgeMs: number;
  };
}

export interface VariableSpec {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
  readonly default?: string;
  readonly secret?: boolean;
}

export const VARIABLES: readonly VariableSpec[] = [
  {
    name: 'KAFKA_BROKERS',
    required: true,
    description: 'Comma-separated bootstrap brokers, `host:port` each.',
  },
  {
    name: 'KAFKA_GROUP_ID',
    default: 'genesys-event-bridge',
    description: 'Consumer group the bridge joins.',
  },
  {
    name: 'KAFKA_CLIENT_ID',
    default: 'genesys-event-bridge',
    description: 'Kafka client id (broker logs, quotas).',
  },
  {
    name: 'KAFKA_START_FROM',
    default: 'latest',
    description:
      "Where a group with no committed offset starts: `latest` (only new events) or `earliest` (the topic's whole retained history).",
  },
  { name: 'RULES_FILE', required: true, description: 'Path of the rules file (YAML or JSON).' },
  {
    name: 'DEAD_LETTER_TOPIC',
    default: '{topic}.dlq',
    description: 'Topic that receives events that cannot be delivered; `{topic}` is the source topic.',
  },
  {
    name: 'GENESYS_REGION',
    description: `Genesys Cloud region host, e.g. \`mypurecloud.ie\`. One of: ${GENESYS_REGIONS.join(', ')}. Required unless both URL overrides are set.`,
  },
  { name: 'GENESYS_CLIENT_ID', required: true, description: 'OAuth client id (client-credentials grant).' },
  {
    name: 'GENESYS_CLIENT_SECRET',
    required: true,
    secret: true,
    description: 'OAuth client secret. `GENESYS_CLIENT_SECRET_FILE` may name a file holding it instead.',
  },
  {
    name: 'GENESYS_API_URL',
    description: 'Overrides the API base URL (`https://api.<region>`), e.g. to point at the simulator.',
  },
  {
    name: 'GENESYS_LOGIN_URL',
    description:
      'Overrides the login base URL (`https://login.<region>`); the token is requested from `<url>/oauth/token`.',
  },
  {
    name: 'GENESYS_REQUEST_TIMEOUT_MS',
    default: '10000',
    description: 'Timeout of each HTTP call to Genesys (token and API), in milliseconds.',
  },
  { name: 'LOG_LEVEL', default: 'info', description: 'fatal, error, warn, info, debug, trace or silent.' },
  {
    name: 'GENESYS_CLIENT_RATE_LIMIT',
    default: '300',
    description:
      'Genesys API calls per rate window this bridge makes with its token (Genesys allows 300 a minute).',
  },
  {
    name: 'GENESYS_EMAIL_ORG_RATE_LIMIT',
    default: '300',
    description: 'Agentless emails per rate window for the whole organisation, all replicas together.',
  },
  {
    name: 'GENESYS_RATE_WINDOW_MS',
    default: '60000',
    description: 'The window both rate limits count in, in milliseconds.',
  },
  {
    name: 'REDIS_URL',
    description:
      'Redis shared by the replicas for the organisation-wide rate budgets, e.g. `redis://redis:6379/0`. Unset: in-process.',
  },
  {
    name: 'REDIS_KEY_PREFIX',
    default: 'geb:',
    description: 'Prefix of the Redis keys; replicas of one organisation share it.',
  },
  {
    name: 'DELIVERY_RETRY_BASE_DELAY_MS',
    default: '250',
    description: 'First backoff after a transient failure; doubles per attempt, with jitter.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_DELAY_MS',
    default: '30000',
    description: 'The backoff never grows past this.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_ATTEMPTS',
    default: '10',
    description:
      'Tries of one delivery after which a transient failure counts as systemic and pauses delivery.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_AGE_MS',
    default: '300000',
    description: 'Likewise, once this long has passed since the first try.',
  },
];

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the environment into a validated, frozen Config, or throws one CONFIG_INVALID error listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);

  const brokers = reader.list('KAFKA_BROKERS');
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker)) {
      problems.push(`KAFKA_BROKERS: "${broker}" is not host:port`);
    }
  }

  const region = reader.optional('GENESYS_REGION');
  if (region !== undefined && !isGenesysRegion(region)) {
    problems.push(
      `GENESYS_REGION: "${region}" is not a Genesys Cloud region; use one of ${GENESYS_REGIONS.join(', ')}`,
    );
  }
  const apiUrl = reader.url('GENESYS_API_URL');
  const loginUrl = reader.url('GENESYS_LOGIN_URL');
  if (region === undefined && (apiUrl === undefined || loginUrl === undefined)) {
    problems.push('GENESYS_REGION is required unless both GENESYS_API_URL and GENESYS_LOGIN_URL are set');
  }
  const knownRegion = region !== undefined && isGenesysRegion(region) ? region : undefined;
  const apiBaseUrl = apiUrl ?? (knownRegion ? apiBaseUrlOf(knownRegion) : '');
  const loginBaseUrl = loginUrl ?? (knownRegion ? loginBaseUrlOf(knownRegion) : '');

  const config: Config = {
    kafka: {
      brokers,
      clientId: reader.string('KAFKA_CLIENT_ID'),
      groupId: reader.string('KAFKA_GROUP_ID'),
      startFrom: reader.oneOf('KAFKA_START_FROM', ['earliest', 'latest'] as const),
    },
    rulesFile: reader.string('RULES_FILE'),
    deadLetterTopic: reader.string('DEAD_LETTER_TOPIC'),
    genesys: {
      region,
      apiBaseUrl: apiBaseUrl.replace(/\/+$/, ''),
      tokenUrl: loginBaseUrl ? `${loginBaseUrl.replace(/\/+$/, '')}/oauth/token` : '',
      clientId: reader.string('GENESYS_CLIENT_ID'),
      clientSecret: new Secret(reader.secret('GENESYS_CLIENT_SECRET')),
      requestTimeoutMs: reader.integer('GENESYS_REQUEST_TIMEOUT_MS', 100, 600_000),
    },
    logLevel: reader.oneOf('LOG_LEVEL', [
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ] as const),
    rateLimits: {
      perClient: reader.integer('GENESYS_CLIENT_RATE_LIMIT', 10, 1_000_000),
      agentlessEmailOrg: reader.integer('GENESYS_EMAIL_ORG_RATE_LIMIT', 10, 1_000_000),
      windowMs: reader.integer('GENESYS_RATE_WINDOW_MS', 1_000, 3_600_000),
      redisUrl: reader.redisUrl('REDIS_URL'),
      redisKeyPrefix: reader.string('REDIS_KEY_PREFIX'),
    },
    retry: {
      baseDelayMs: reader.integer('DELIVERY_RETRY_BASE_DELAY_MS', 1, 600_000),
      maxDelayMs: reader.integer('DELIVERY_RETRY_MAX_DELAY_MS', 1, 3_600_000),
      maxAttempts: reader.integer('DELIVERY_RETRY_MAX_ATTEMPTS', 1, 1_000_000),
      maxAgeMs: reader.integer('DELIVERY_RETRY_MAX_AGE_MS', 1_000, 7 * 24 * 3_600_000),
    },
  };

  if (problems.length > 0) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
  return deepFreeze(config);
}

const specs = new Map(VARIABLES.map((v) => [v.name, v]));

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  /** The trimmed value, the declared default, or undefined; reports a missing required variable. */
  private raw(name: string): string | undefined {
    const spec = specs.get(name);
    if (!spec) throw new Error(`config variable ${name} is not declared in VARIABLES`);
    const value = this.env[name]?.trim();
    if (value !== undefined && value !== '') return value;
    if (spec.default !== undefined) return spec.default;
    if (spec.required) this.problems.push(`${name} is required: ${spec.description}`);
    return undefined;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  string(name: string): string {
    return this.raw(name) ?? '';
  }

  /** A secret may also come from the file named by `<NAME>_FILE`, as container platforms mount them. */
  secret(name: string): string {
    const fileVar = `${name}_FILE`;
    const file = this.env[fileVar]?.trim();
    const direct = this.env[name];
    if (file) {
      if (direct !== undefined && direct !== '') {
        this.problems.push(`${name} and ${fileVar} are both set; set only one`);
        return '';
      }
      try {
        return readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        this.problems.push(`${fileVar}: cannot read "${file}" (${reason})`);
        return '';
      }
    }
    return this.raw(name) ?? '';
  }

  list(name: string): string[] {
    const value = this.raw(name);
    if (value === undefined) return [];
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (items.length === 0) this.problems.push(`${name} must list at least one value`);
    return items;
  }

  url(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        this.problems.push(`${name}: "${value}" must be an http(s) URL`);
      }
      return value;
    } catch {
      this.problems.push(`${name}: "${value}" is not a URL`);
      return undefined;
    }
  }

  redisUrl(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!/^rediss?:\/\//.test(value)) this.problems.push(`${name}: must be a redis:// or rediss:// URL`);
    return value;
  }

  integer(name: string, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return 0;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: "${value}" must be a whole number from ${min} to ${max}`);
      return 0;
    }
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const value = this.raw(name);
    if (value !== undefined && (allowed as readonly string[]).includes(value)) return value as T;
    if (value !== undefined) this.problems.push(`${name}: "${value}" must be one of ${allowed.join(', ')}`);
    return allowed[0] as T;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
