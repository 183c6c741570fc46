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
    readonly security: KafkaSecurity;
    readonly sessionTimeoutMs: number;
  };
  readonly rulesFile: string;
  /** How often the rules file and its template files are checked for changes; 0: only on SIGHUP. */
  readonly rulesWatchIntervalMs: number;
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
  readonly ledger: {
    /** A file path (embedded backend) or a postgres:// URL (shared by replicas). */
    readonly url: string;
    readonly retentionDays: number;
    /** Header whose value, when present, is the idempotency key instead of the event's coordinates. */
    readonly keyHeader: string | undefined;
  };
  readonly delivery: {
    readonly maxInFlight: number;
    readonly maxInFlightPerPartition: number;
    readonly maxQueuedPerPartition: number;
    readonly pauseProbeIntervalMs: number;
    readonly commitIntervalMs: number;
    readonly shutdownGraceMs: number;
  };
  readonly admin: {
    readonly host: string;
    readonly port: number;
  };
  /** Absent when SCHEMA_REGISTRY_URL is not set. */
  readonly schemaRegistry: SchemaRegistryConfig | undefined;
  /** Topic names and globs whose unframed values are read as plain JSON. */
  readonly plainJsonTopics: readonly string[];
  /** Events whose value is larger are dead-lettered (EVENT_TOO_LARGE) without being decoded. */
  readonly maxEventBytes: number;
  /** Whether an event's raw JSON is tested for the rules' literals before it is decoded (src/rules/prefilter.ts). */
  readonly eventPrefilter: boolean;
}

export interface SchemaRegistryConfig {
  readonly url: string;
  readonly username: string | undefined;
  readonly password: Secret | undefined;
  /** PEM contents, read from the *_FILE variables at start-up. */
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How the bridge (consumer, dead-letter producer, replay) authenticates to Kafka and protects the connection. */
export interface KafkaSecurity {
  readonly protocol: 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
  /** Present with SSL and SASL_SSL. */
  readonly tls?: {
    /** PEM certificates to trust instead of the system's CAs. */
    readonly ca?: string;
    /** PEM client certificate and key, for brokers that require mutual TLS. */
    readonly cert?: string;
    readonly key?: Secret;
    readonly keyPassword?: Secret;
    /** Whether the broker's certificate must name the host connected to (on unless turned off). */
    readonly verifyHostname: boolean;
  };
  /** Present with SASL_PLAINTEXT and SASL_SSL. */
  readonly sasl?: {
    readonly mechanism: SaslMechanism;
    readonly username: string;
    readonly password: Secret;
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
  {
    name: 'KAFKA_SECURITY_PROTOCOL',
    default: 'PLAINTEXT',
    description:
      "PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS), as in Kafka's own configuration.",
  },
  {
    name: 'KAFKA_SSL_CA_FILE',
    description:
      "PEM file of the CA certificate(s) to trust for the brokers' TLS certificates (default: the system's CAs).",
  },
  {
    name: 'KAFKA_SSL_CERT_FILE',
    description: 'PEM client certificate, for brokers that require mutual TLS (with KAFKA_SSL_KEY_FILE).',
  },
  { name: 'KAFKA_SSL_KEY_FILE', description: 'PEM private key of the client certificate.' },
  {
    name: 'KAFKA_SSL_KEY_PASSWORD',
    secret: true,
    description:
      'Passphrase of KAFKA_SSL_KEY_FILE, if encrypted. `KAFKA_SSL_KEY_PASSWORD_FILE` may name a file holding it.',
  },
  {
    name: 'KAFKA_SSL_VERIFY_HOSTNAME',
    default: 'true',
    description:
      "Whether a broker's certificate must name the host connected to. Turn off (`false`) only for brokers addressed by IPs their certificates lack.",
  },
  {
    name: 'KAFKA_SASL_MECHANISM',
    description: 'PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_PLAINTEXT and SASL_SSL.',
  },
  { name: 'KAFKA_SASL_USERNAME', description: 'SASL user name.' },
  {
    name: 'KAFKA_SASL_PASSWORD',
    secret: true,
    description: 'SASL password. `KAFKA_SASL_PASSWORD_FILE` may name a file holding it.',
  },
  { name: 'RULES_FILE', required: true, description: 'Path of the rules file (YAML or JSON).' },
  {
    name: 'RULES_WATCH_INTERVAL_MS',
    default: '1000',
    description:
      'How often the rules file and its template files are checked for changes; 0: reload on SIGHUP only.',
  },
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
    name: 'MAX_IN_FLIGHT',
    default: '32',
    description: 'Deliveries running at once across all partitions.',
  },
  {
    name: 'PARTITION_MAX_IN_FLIGHT',
    default: '8',
    description: 'Deliveries running at once within one partition (different ordering keys only).',
  },
  {
    name: 'PARTITION_MAX_QUEUED',
    default: '1000',
    description:
      'Events of one partition fetched but not final; at this bound fetching of the partition pauses.',
  },
  {
    name: 'PAUSE_PROBE_INTERVAL_MS',
    default: '15000',
    description: 'While paused on a systemic failure, how often the stuck delivery is tried again.',
  },
  {
    name: 'KAFKA_COMMIT_INTERVAL_MS',
    default: '1000',
    description:
      'How often the offset watermark of each partition is committed (also at once when nothing is left unfinished).',
  },
  {
    name: 'SHUTDOWN_GRACE_MS',
    default: '10000',
    description: 'On SIGTERM/SIGINT, how long in-flight deliveries may run on before they are aborted.',
  },
  {
    name: 'ADMIN_PORT',
    default: '8080',
    description: 'Port of the admin HTTP server (/healthz, /readyz, /metrics); 0 picks a free port (logged).',
  },
  { name: 'ADMIN_HOST', default: '0.0.0.0', description: 'Address the admin HTTP server binds.' },
  {
    name: 'KAFKA_SESSION_TIMEOUT_MS',
    default: '30000',
    description:
      "How long the group waits for a silent member before reassigning its partitions, in milliseconds (the broker's `group.min.session.timeout.ms` bounds it).",
  },
  {
    name: 'LEDGER_URL',
    default: 'geb-deliveries.jsonl',
    description:
      'Where the delivery ledger lives: a file path (embedded, one process) or `postgres://user:pass@host:5432/db[?schema=name]` (shared by every replica of the group). See docs/deliveries.md.',
  },
  {
    name: 'LEDGER_RETENTION_DAYS',
    default: '30',
    description: 'Delivery records last updated longer ago than this are deleted.',
  },
  {
    name: 'LEDGER_KEY_HEADER',
    description:
      "Kafka header whose value, when an event has it, is the idempotency key (e.g. the producer's event id), instead of the event's topic/partition/offset.",
  },
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
  {
    name: 'SCHEMA_REGISTRY_URL',
    description:
      'Confluent-compatible schema registry base URL, for values in the Confluent wire format (Avro, JSON Schema, Protobuf).',
  },
  { name: 'SCHEMA_REGISTRY_USERNAME', description: 'Basic auth user name (Confluent Cloud: the API key).' },
  {
    name: 'SCHEMA_REGISTRY_PASSWORD',
    secret: true,
    description: 'Basic auth password (Confluent Cloud: the API secret). Or `SCHEMA_REGISTRY_PASSWORD_FILE`.',
  },
  {
    name: 'SCHEMA_REGISTRY_CA_FILE',
    description: 'PEM file of CA certificates to trust for an https registry.',
  },
  {
    name: 'SCHEMA_REGISTRY_CERT_FILE',
    description: 'PEM client certificate for mutual TLS with the registry.',
  },
  { name: 'SCHEMA_REGISTRY_KEY_FILE', description: 'PEM private key of SCHEMA_REGISTRY_CERT_FILE.' },
  {
    name: 'PLAIN_JSON_TOPICS',
    default: '*',
    description:
      'Topics (comma-separated names or globs like `shop.*`; `none` for no topic) whose values without registry framing are read as UTF-8 JSON.',
  },
  {
    name: 'MAX_EVENT_BYTES',
    default: '1048576',
    description:
      'Largest event value, in bytes, that is decoded; a larger one is dead-lettered with EVENT_TOO_LARGE.',
  },
  {
    name: 'EVENT_PREFILTER',
    default: 'true',
    description:
      "`true`: a plain-JSON event whose raw bytes hold none of the string values and prefixes the topic's rules require is settled as matching no rule without being decoded (several times faster on topics where most events match nothing); such an event is then not dead-lettered if its JSON is malformed. `false`: every event is decoded.",
  },
];

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the environment into a validated, frozen Config, or throws one CONFIG_INVALID error listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);

  const connection = readKafkaConnection(reader, problems);

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

  const registryUrl = reader.url('SCHEMA_REGISTRY_URL');
  const registryUser = reader.optional('SCHEMA_REGISTRY_USERNAME');
  const registryPassword = reader.secret('SCHEMA_REGISTRY_PASSWORD');
  const pem = (name: string): string | undefined => {
    const file = reader.optional(name);
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(
        `${name}: cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      );
      return undefined;
    }
  };
  const registryCa = pem('SCHEMA_REGISTRY_CA_FILE');
  const registryCert = pem('SCHEMA_REGISTRY_CERT_FILE');
  const registryKey = pem('SCHEMA_REGISTRY_KEY_FILE');
  if ((registryCert === undefined) !== (registryKey === undefined)) {
    problems.push('SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE go together: set both or neither');
  }
  if (registryUrl === undefined && (registryUser !== undefined || registryCa !== undefined)) {
    problems.push('SCHEMA_REGISTRY_* settings are given but SCHEMA_REGISTRY_URL is not set');
  }

  const config: Config = {
    kafka: {
      ...connection,
      groupId: reader.string('KAFKA_GROUP_ID'),
      startFrom: reader.oneOf('KAFKA_START_FROM', ['earliest', 'latest'] as const),
      sessionTimeoutMs: reader.integer('KAFKA_SESSION_TIMEOUT_MS', 1_000, 3_600_000),
    },
    rulesFile: reader.string('RULES_FILE'),
    rulesWatchIntervalMs: reader.integer('RULES_WATCH_INTERVAL_MS', 0, 3_600_000),
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
    delivery: {
      maxInFlight: reader.integer('MAX_IN_FLIGHT', 1, 10_000),
      maxInFlightPerPartition: reader.integer('PARTITION_MAX_IN_FLIGHT', 1, 10_000),
      maxQueuedPerPartition: reader.integer('PARTITION_MAX_QUEUED', 1, 1_000_000),
      pauseProbeIntervalMs: reader.integer('PAUSE_PROBE_INTERVAL_MS', 10, 3_600_000),
      commitIntervalMs: reader.integer('KAFKA_COMMIT_INTERVAL_MS', 10, 600_000),
      shutdownGraceMs: reader.integer('SHUTDOWN_GRACE_MS', 0, 3_600_000),
    },
    admin: {
      host: reader.string('ADMIN_HOST'),
      port: reader.integer('ADMIN_PORT', 0, 65_535),
    },
    ledger: {
      url: reader.string('LEDGER_URL'),
      retentionDays: reader.integer('LEDGER_RETENTION_DAYS', 1, 3650),
      keyHeader: reader.optional('LEDGER_KEY_HEADER'),
    },
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
    schemaRegistry:
      registryUrl === undefined
        ? undefined
        : {
            url: registryUrl,
            username: registryUser,
            password: registryPassword === '' ? undefined : new Secret(registryPassword),
            ca: registryCa,
            cert: registryCert,
            key: registryKey,
          },
    plainJsonTopics: reader.list('PLAIN_JSON_TOPICS'),
    maxEventBytes: reader.integer('MAX_EVENT_BYTES', 1, 100 * 1024 * 1024),
    eventPrefilter: reader.oneOf('EVENT_PREFILTER', ['true', 'false'] as const) === 'true',
  };

  throwIfInvalid(problems);
  return deepFreeze(config);
}

export interface KafkaConnectionConfig {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly security: KafkaSecurity;
}

/**
 * Only the Kafka connection settings (brokers, client id, TLS and SASL), for commands that talk to Kafka but not to
 * Genesys, such as `geb dlq replay`: the same variables and checks as `geb run`.
 */
export function loadKafkaConnectionConfig(env: Env = process.env): KafkaConnectionConfig {
  const problems: string[] = [];
  const connection = readKafkaConnection(new EnvReader(env, problems), problems);
  throwIfInvalid(problems);
  return deepFreeze(connection);
}

/** Brokers, client id and security: what every command that talks to Kafka reads, checked the same way. */
function readKafkaConnection(reader: EnvReader, problems: string[]): KafkaConnectionConfig {
  const brokers = reader.list('KAFKA_BROKERS');
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker)) problems.push(`KAFKA_BROKERS: "${broker}" is not host:port`);
  }
  return {
    brokers,
    clientId: reader.string('KAFKA_CLIENT_ID'),
    security: readKafkaSecurity(reader, problems),
  };
}

function throwIfInvalid(problems: readonly string[]): void {
  if (problems.length > 0) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
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

  /** The content of the file a variable names, or undefined when it is not set. */
  file(name: string): string | undefined {
    const path = this.raw(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      this.problems.push(`${name}: cannot read "${path}" (${reason})`);
      return undefined;
    }
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

function readKafkaSecurity(reader: EnvReader, problems: string[]): KafkaSecurity {
  const protocol = reader.oneOf('KAFKA_SECURITY_PROTOCOL', [
    'PLAINTEXT',
    'SSL',
    'SASL_PLAINTEXT',
    'SASL_SSL',
  ] as const);
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const usesSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const tlsVars = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'].filter((v) =>
    reader.optional(v),
  );
  const saslVars = ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME'].filter((v) => reader.optional(v));
  if (!usesTls && tlsVars.length > 0) {
    problems.push(
      `${tlsVars.join(', ')} set, but KAFKA_SECURITY_PROTOCOL is ${protocol}: use SSL or SASL_SSL`,
    );
  }
  if (!usesSasl && saslVars.length > 0) {
    problems.push(
      `${saslVars.join(', ')} set, but KAFKA_SECURITY_PROTOCOL is ${protocol}: use SASL_PLAINTEXT or SASL_SSL`,
    );
  }

  let tls: KafkaSecurity['tls'];
  if (usesTls) {
    const cert = reader.file('KAFKA_SSL_CERT_FILE');
    const key = reader.file('KAFKA_SSL_KEY_FILE');
    if ((cert === undefined) !== (key === undefined)) {
      problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together: set both or neither');
    }
    const keyPassword = reader.secret('KAFKA_SSL_KEY_PASSWORD');
    tls = {
      ...optionalField('ca', reader.file('KAFKA_SSL_CA_FILE')),
      ...optionalField('cert', cert),
      ...optionalField('key', key === undefined ? undefined : new Secret(key)),
      ...optionalField('keyPassword', keyPassword ? new Secret(keyPassword) : undefined),
      verifyHostname: reader.oneOf('KAFKA_SSL_VERIFY_HOSTNAME', ['true', 'false'] as const) === 'true',
    };
  }

  let sasl: KafkaSecurity['sasl'];
  if (usesSasl) {
    const mechanism = reader.optional('KAFKA_SASL_MECHANISM')?.toLowerCase();
    const mechanisms = ['plain', 'scram-sha-256', 'scram-sha-512'];
    if (mechanism === undefined) problems.push(`KAFKA_SASL_MECHANISM is required with ${protocol}`);
    else if (!mechanisms.includes(mechanism)) {
      problems.push(
        `KAFKA_SASL_MECHANISM: "${mechanism}" must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`,
      );
    }
    const username = reader.optional('KAFKA_SASL_USERNAME');
    if (username === undefined) problems.push(`KAFKA_SASL_USERNAME is required with ${protocol}`);
    const password = reader.secret('KAFKA_SASL_PASSWORD');
    if (!password)
      problems.push(`KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) is required with ${protocol}`);
    sasl = {
      mechanism: (mechanism ?? 'plain') as SaslMechanism,
      username: username ?? '',
      password: new Secret(password),
    };
  }
  return { protocol, ...optionalField('tls', tls), ...optionalField('sasl', sasl) };
}

function optionalField<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
