import { readFileSync } from 'node:fs';
import { BridgeError } from './errors.js';
import { GENESYS_REGIONS, apiBaseUrlOf, isGenesysRegion, loginBaseUrlOf } from './regions.js';
import { invalidAllowedHosts, parseAllowedHosts } from './rules/connection.js';
import { Secret, maskUrlCredentials } from './secret.js';
import type { KafkaSecurity, SaslMechanism } from './kafka/connection.js';

export type { KafkaSecurity, SaslMechanism };

/**
 * Configuration comes from environment variables only, parsed once at start-up into a frozen object.
 * Every variable is one row of SETTINGS below, from which the parser, `geb config` and docs/configuration.md come.
 */

export type StartFrom = (typeof START_FROM)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

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
  /** A folder, besides the rules file's own, that the rules file's template files may be read from. */
  readonly rulesTemplatesDir: string | undefined;
  /** Hosts (`host` or `host:port`) rules-file connections may name besides Genesys' own, over http too. */
  readonly genesysAllowedHosts: readonly string[];
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
  /** GEB_HEAP_MB, 0 when unset: applied by the `geb` entry at start, before this is read (src/heap.ts); checked here. */
  readonly heapMb: number;
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
    /** After the grace: how long disconnecting from Kafka and closing the rest may take before the process exits. */
    readonly shutdownCloseTimeoutMs: number;
  };
  readonly admin: {
    readonly host: string;
    readonly port: number;
    /** Bearer token that GET /deliveries requires; unset: /deliveries is off. */
    readonly token: Secret | undefined;
  };
  readonly outcomes: {
    readonly statusChecks: number;
    readonly statusCheckDelayMs: number;
    readonly statusCheckIntervalMs: number;
    /** Unset: outcomes are not published. */
    readonly topic: string | undefined;
    readonly suppressionDays: number;
    readonly reconcileAnalyticsLagMs: number;
  };
  /** HMAC key of the recipient hash (telemetry/logger.ts); unset: an unkeyed SHA-256, warned about at start-up. */
  readonly recipientHashKey: Secret | undefined;
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
  readonly key: Secret | undefined;
}

/** What a setting's raw value is; the parser and the generated docs both read it from the row. */
export type SettingKind =
  | 'text'
  | 'integer'
  | 'choice'
  | 'list'
  | 'url'
  | 'redis-url'
  | 'path'
  | 'pem-file'
  /** Never printed; `<NAME>_FILE` may name a file holding it instead (as container platforms mount secrets). */
  | 'secret';

/** The sections of `geb config` and docs/configuration.md, in this order. */
export const SETTING_GROUPS = {
  kafka: 'Kafka',
  'kafka-security': 'Kafka security (TLS and SASL)',
  rules: 'Rules file',
  genesys: 'Genesys Cloud',
  'rate-limits': 'Rate limits',
  delivery: 'Delivery: concurrency, retries, shutdown',
  ledger: 'Delivery ledger',
  outcomes: 'Delivery outcomes: status checks, outcome topic, suppression',
  decoding: 'Decoding and schema registry',
  admin: 'Admin server and logs',
} as const;
export type SettingGroup = keyof typeof SETTING_GROUPS;

/** One environment variable: everything the parser, `geb config` and docs/configuration.md need to know about it. */
export interface Setting {
  readonly name: string;
  readonly group: SettingGroup;
  readonly kind: SettingKind;
  readonly description: string;
  readonly required?: boolean;
  readonly default?: string;
  /** Bounds of an `integer`. */
  readonly min?: number;
  readonly max?: number;
  /** The allowed values of a `choice`. */
  readonly values?: readonly string[];
}

export const START_FROM = ['earliest', 'latest'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
const HOUR_MS = 3_600_000;

/**
 * Every environment variable the bridge reads, one row each. Adding a setting: a row here, a read in loadConfig
 * (`reader.integer('NAME')` etc., which takes kind, range and default from the row), a field in Config, then
 * `npm run docs:config` to regenerate docs/configuration.md.
 */
export const SETTINGS: readonly Setting[] = [
  // Kafka
  {
    name: 'KAFKA_BROKERS',
    group: 'kafka',
    kind: 'list',
    required: true,
    description: 'Comma-separated bootstrap brokers, `host:port` each.',
  },
  {
    name: 'KAFKA_GROUP_ID',
    group: 'kafka',
    kind: 'text',
    default: 'genesys-event-bridge',
    description: 'Consumer group the bridge joins. Replicas of one bridge share it.',
  },
  {
    name: 'KAFKA_CLIENT_ID',
    group: 'kafka',
    kind: 'text',
    default: 'genesys-event-bridge',
    description: 'Kafka client id (broker logs, quotas).',
  },
  {
    name: 'KAFKA_START_FROM',
    group: 'kafka',
    kind: 'choice',
    values: START_FROM,
    default: 'latest',
    description:
      "Where a group with no committed offset starts: `latest` (only new events) or `earliest` (the topic's whole retained history: beware, old events send emails too).",
  },
  {
    name: 'KAFKA_SESSION_TIMEOUT_MS',
    group: 'kafka',
    kind: 'integer',
    min: 1_000,
    max: HOUR_MS,
    default: '30000',
    description:
      "How long the group waits for a silent member before reassigning its partitions (the broker's `group.min.session.timeout.ms` bounds it).",
  },
  {
    name: 'KAFKA_COMMIT_INTERVAL_MS',
    group: 'kafka',
    kind: 'integer',
    min: 10,
    max: 600_000,
    default: '1000',
    description:
      'How often the offset watermark of each partition is committed (also at once when nothing is left unfinished).',
  },
  {
    name: 'DEAD_LETTER_TOPIC',
    group: 'kafka',
    kind: 'text',
    default: '{topic}.dlq',
    description: 'Topic that receives events that cannot be delivered; `{topic}` is the source topic.',
  },
  // Kafka security
  {
    name: 'KAFKA_SECURITY_PROTOCOL',
    group: 'kafka-security',
    kind: 'choice',
    values: SECURITY_PROTOCOLS,
    default: 'PLAINTEXT',
    description:
      "As in Kafka's own configuration: SSL is TLS, SASL_SSL is SASL over TLS. The same settings serve the consumer, the dead-letter producer and `geb dlq replay`.",
  },
  {
    name: 'KAFKA_SSL_CA_FILE',
    group: 'kafka-security',
    kind: 'pem-file',
    description: "CA certificate(s) to trust for the brokers' TLS certificates (default: the system's CAs).",
  },
  {
    name: 'KAFKA_SSL_CERT_FILE',
    group: 'kafka-security',
    kind: 'pem-file',
    description: 'Client certificate, for brokers that require mutual TLS (with `KAFKA_SSL_KEY_FILE`).',
  },
  {
    name: 'KAFKA_SSL_KEY_FILE',
    group: 'kafka-security',
    kind: 'pem-file',
    description: 'Private key of the client certificate.',
  },
  {
    name: 'KAFKA_SSL_KEY_PASSWORD',
    group: 'kafka-security',
    kind: 'secret',
    description: 'Passphrase of `KAFKA_SSL_KEY_FILE`, if it is encrypted.',
  },
  {
    name: 'KAFKA_SSL_VERIFY_HOSTNAME',
    group: 'kafka-security',
    kind: 'choice',
    values: ['true', 'false'],
    default: 'true',
    description:
      "Whether a broker's certificate must name the host connected to. The chain is always verified; turn this off only for brokers addressed by IPs their certificates lack.",
  },
  {
    name: 'KAFKA_SASL_MECHANISM',
    group: 'kafka-security',
    kind: 'choice',
    values: SASL_MECHANISMS,
    description: 'Required with SASL_PLAINTEXT and SASL_SSL.',
  },
  {
    name: 'KAFKA_SASL_USERNAME',
    group: 'kafka-security',
    kind: 'text',
    description: 'SASL user name.',
  },
  {
    name: 'KAFKA_SASL_PASSWORD',
    group: 'kafka-security',
    kind: 'secret',
    description: 'SASL password.',
  },
  // Rules file
  {
    name: 'RULES_FILE',
    group: 'rules',
    kind: 'path',
    required: true,
    description: 'The rules file (YAML or JSON); see [rules.md](rules.md).',
  },
  {
    name: 'RULES_WATCH_INTERVAL_MS',
    group: 'rules',
    kind: 'integer',
    min: 0,
    max: HOUR_MS,
    default: '1000',
    description:
      'How often the rules file and its template files are checked for changes: a valid new version replaces the rules without a restart, an invalid one is logged and ignored. 0: reload on SIGHUP only.',
  },
  {
    name: 'RULES_TEMPLATES_DIR',
    group: 'rules',
    kind: 'path',
    description:
      "A folder, besides the rules file's own, that template files (`{ file: … }`) may be read from. Any other path (`..`, absolute, or a symbolic link pointing out) is refused. See docs/security.md.",
  },
  {
    name: 'GENESYS_ALLOWED_HOSTS',
    group: 'rules',
    kind: 'list',
    description:
      'Comma-separated hosts (`host` for any port, or `host:port`) that connections in the rules file may name in `apiUrl`/`loginUrl` besides the https Genesys Cloud hosts, over http too (e.g. the simulator). The GENESYS_* variables are not limited by it.',
  },
  // Genesys Cloud
  {
    name: 'GENESYS_REGION',
    group: 'genesys',
    kind: 'choice',
    values: GENESYS_REGIONS,
    description:
      "Region host of the Genesys Cloud organisation. Required unless both URL overrides are set. A region that does not match the OAuth client's shows up as `invalid_client`.",
  },
  {
    name: 'GENESYS_CLIENT_ID',
    group: 'genesys',
    kind: 'text',
    required: true,
    description: 'OAuth client id (client-credentials grant).',
  },
  {
    name: 'GENESYS_CLIENT_SECRET',
    group: 'genesys',
    kind: 'secret',
    required: true,
    description: 'OAuth client secret.',
  },
  {
    name: 'GENESYS_API_URL',
    group: 'genesys',
    kind: 'url',
    description:
      'Overrides the API base URL (`https://api.<region>`), e.g. `http://127.0.0.1:8089` for the simulator.',
  },
  {
    name: 'GENESYS_LOGIN_URL',
    group: 'genesys',
    kind: 'url',
    description:
      'Overrides the login base URL (`https://login.<region>`); the token is requested from `<url>/oauth/token`.',
  },
  {
    name: 'GENESYS_REQUEST_TIMEOUT_MS',
    group: 'genesys',
    kind: 'integer',
    min: 100,
    max: 600_000,
    default: '10000',
    description: 'Timeout of each HTTP call to Genesys (token and API).',
  },
  // Rate limits
  {
    name: 'GENESYS_CLIENT_RATE_LIMIT',
    group: 'rate-limits',
    kind: 'integer',
    min: 10,
    max: 1_000_000,
    default: '300',
    description:
      "Genesys API calls per rate window this bridge makes with its OAuth client's token (Genesys counts 300 a minute per token). Each replica holds its own token, so this budget is per process.",
  },
  {
    name: 'GENESYS_EMAIL_ORG_RATE_LIMIT',
    group: 'rate-limits',
    kind: 'integer',
    min: 10,
    max: 1_000_000,
    default: '300',
    description:
      "Agentless emails per rate window for the whole organisation (Genesys: 300 a minute, whatever the number of tokens). With `REDIS_URL` all replicas share it; without, it is this process's alone.",
  },
  {
    name: 'GENESYS_RATE_WINDOW_MS',
    group: 'rate-limits',
    kind: 'integer',
    min: 1_000,
    max: HOUR_MS,
    default: '60000',
    description:
      'The window both rate limits count in. The limiter paces calls evenly and never lets more than the limit through within any such window.',
  },
  {
    name: 'REDIS_URL',
    group: 'rate-limits',
    kind: 'redis-url',
    description:
      '`redis://[user:password@]host:port[/db]` (or `rediss://`): the Redis in which replicas share the organisation-wide budget. Unset: in-process budgets. If Redis cannot be reached, deliveries are retried and then paused like a Genesys outage.',
  },
  {
    name: 'REDIS_KEY_PREFIX',
    group: 'rate-limits',
    kind: 'text',
    default: 'geb:',
    description:
      'Prefix of the Redis keys. Replicas sending for the same organisation must share it; bridges for different organisations on one Redis must not.',
  },
  // Delivery
  {
    name: 'MAX_IN_FLIGHT',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: 10_000,
    default: '32',
    description: 'Deliveries running at once across all partitions.',
  },
  {
    name: 'PARTITION_MAX_IN_FLIGHT',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: 10_000,
    default: '8',
    description: 'Deliveries running at once within one partition (different ordering keys only).',
  },
  {
    name: 'PARTITION_MAX_QUEUED',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    default: '1000',
    description:
      'Events of one partition fetched but not final; at this bound fetching of the partition pauses.',
  },
  {
    name: 'PAUSE_PROBE_INTERVAL_MS',
    group: 'delivery',
    kind: 'integer',
    min: 10,
    max: HOUR_MS,
    default: '15000',
    description: 'While paused on a systemic failure, how often the stuck delivery is tried again.',
  },
  {
    name: 'DELIVERY_RETRY_BASE_DELAY_MS',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: 600_000,
    default: '250',
    description:
      'First backoff after a transient failure (408, 5xx, network error, token endpoint failing); doubles per attempt, with jitter. A 429 waits at least its `Retry-After`.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_DELAY_MS',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: HOUR_MS,
    default: '30000',
    description: 'The backoff never grows past this.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_ATTEMPTS',
    group: 'delivery',
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    default: '10',
    description:
      'Tries of one delivery after which a transient failure is taken as systemic: delivery pauses and probes, and the event is never dead-lettered. 429s do not count.',
  },
  {
    name: 'DELIVERY_RETRY_MAX_AGE_MS',
    group: 'delivery',
    kind: 'integer',
    min: 1_000,
    max: 7 * 24 * HOUR_MS,
    default: '300000',
    description: 'Likewise, once this long has passed since the first try.',
  },
  {
    name: 'SHUTDOWN_GRACE_MS',
    group: 'delivery',
    kind: 'integer',
    min: 0,
    max: HOUR_MS,
    default: '10000',
    description: 'On SIGTERM/SIGINT, how long in-flight deliveries may run on before they are aborted.',
  },
  {
    name: 'SHUTDOWN_CLOSE_TIMEOUT_MS',
    group: 'delivery',
    kind: 'integer',
    min: 1_000,
    max: 600_000,
    default: '10000',
    description:
      'After the grace period, how long leaving Kafka (commit, leave the group) and closing the ledger, Redis and the admin server may take. The process exits at most SHUTDOWN_GRACE_MS + SHUTDOWN_CLOSE_TIMEOUT_MS after the signal, with code 75 when this bound cut the stop short.',
  },
  // Ledger
  {
    name: 'LEDGER_URL',
    group: 'ledger',
    kind: 'text',
    default: 'geb-deliveries.jsonl',
    description:
      'A file path (embedded, one process) or `postgres://user:pass@host:5432/db[?schema=name]` (shared by every replica of the group); see [deliveries.md](deliveries.md).',
  },
  {
    name: 'LEDGER_RETENTION_DAYS',
    group: 'ledger',
    kind: 'integer',
    min: 1,
    max: 3650,
    default: '30',
    description: 'Delivery records last updated longer ago than this are deleted (at start, then hourly).',
  },
  {
    name: 'LEDGER_KEY_HEADER',
    group: 'ledger',
    kind: 'text',
    description:
      "Kafka header whose value, when an event has it, is the idempotency key (e.g. the producer's event id), instead of the event's topic/partition/offset.",
  },
  // Decoding
  {
    name: 'SCHEMA_REGISTRY_URL',
    group: 'decoding',
    kind: 'url',
    description:
      "Confluent-compatible schema registry (Confluent, Apicurio's `/apis/ccompat/v7`, Redpanda…), for values in the Confluent wire format (Avro, JSON Schema, Protobuf); see [decoding.md](decoding.md).",
  },
  {
    name: 'SCHEMA_REGISTRY_USERNAME',
    group: 'decoding',
    kind: 'text',
    description: 'Basic auth user name (Confluent Cloud: the API key).',
  },
  {
    name: 'SCHEMA_REGISTRY_PASSWORD',
    group: 'decoding',
    kind: 'secret',
    description: 'Basic auth password (Confluent Cloud: the API secret).',
  },
  {
    name: 'SCHEMA_REGISTRY_CA_FILE',
    group: 'decoding',
    kind: 'pem-file',
    description: 'CA certificates to trust for an https registry.',
  },
  {
    name: 'SCHEMA_REGISTRY_CERT_FILE',
    group: 'decoding',
    kind: 'pem-file',
    description: 'Client certificate for mutual TLS with the registry (with `SCHEMA_REGISTRY_KEY_FILE`).',
  },
  {
    name: 'SCHEMA_REGISTRY_KEY_FILE',
    group: 'decoding',
    kind: 'pem-file',
    description: 'Private key of `SCHEMA_REGISTRY_CERT_FILE`.',
  },
  {
    name: 'PLAIN_JSON_TOPICS',
    group: 'decoding',
    kind: 'list',
    default: '*',
    description:
      'Topics (names or globs like `shop.*`; `none` for no topic) whose values without registry framing are read as UTF-8 JSON; on other topics such a value is dead-lettered (`DECODE_FAILED`).',
  },
  {
    name: 'MAX_EVENT_BYTES',
    group: 'decoding',
    kind: 'integer',
    min: 1,
    max: 100 * 1024 * 1024,
    default: '1048576',
    description:
      'Largest event value that is decoded; a larger one is dead-lettered with `EVENT_TOO_LARGE` before any registry lookup or parse.',
  },
  {
    name: 'EVENT_PREFILTER',
    group: 'decoding',
    kind: 'choice',
    values: ['true', 'false'],
    default: 'true',
    description:
      "`true`: a plain-JSON event whose raw bytes hold none of the string values and prefixes the topic's rules require is settled as matching no rule without being decoded (several times faster on topics where most events match nothing); such an event is then not dead-lettered if its JSON is malformed. `false`: every event is decoded.",
  },
  // Delivery outcomes (docs/deliveries.md)
  {
    name: 'STATUS_CHECKS',
    group: 'outcomes',
    kind: 'integer',
    min: 0,
    max: 100,
    default: '5',
    description:
      'How many times the bridge asks Genesys what became of an accepted agentless email or message (delivered, bounced, failed); after the last inconclusive check its status is `unknown` with the reason. 0: no status checks.',
  },
  {
    name: 'STATUS_CHECK_DELAY_MS',
    group: 'outcomes',
    kind: 'integer',
    min: 0,
    max: 86_400_000,
    default: '30000',
    description:
      'Wait after Genesys accepted a send before its first status check (a bounce shows some 20–25 s after the send; unverified).',
  },
  {
    name: 'STATUS_CHECK_INTERVAL_MS',
    group: 'outcomes',
    kind: 'integer',
    min: 100,
    max: 86_400_000,
    default: '60000',
    description:
      "Wait between two status checks of the same send. Checks use the connection's rate budget at a lower priority than sends.",
  },
  {
    name: 'OUTCOME_TOPIC',
    group: 'outcomes',
    kind: 'text',
    description:
      "Kafka topic that receives each delivery's final outcome (schemas/outcome.schema.json), keyed like the source event; `{topic}` is the source topic. Unset: no outcomes are published.",
  },
  {
    name: 'RECONCILE_ANALYTICS_LAG_MS',
    group: 'outcomes',
    kind: 'integer',
    min: 0,
    max: 3_600_000,
    default: '120000',
    description:
      "How long after a conversation Genesys' analytics query is taken to show it (unverified). A delivery a crash left pending is looked up in Genesys this long after the crashed run's last possible call; not found then, it is sent now, once.",
  },
  {
    name: 'SUPPRESSION_DAYS',
    group: 'outcomes',
    kind: 'integer',
    min: 0,
    max: 3650,
    default: '7',
    description:
      'A recipient whose email bounced (or whose message failed) is not sent to again for this many days: such deliveries are recorded `suppressed`. 0: no suppression.',
  },
  // Admin and logs
  {
    name: 'ADMIN_PORT',
    group: 'admin',
    kind: 'integer',
    min: 0,
    max: 65_535,
    default: '8080',
    description:
      'Port of the admin HTTP server (`/healthz`, `/readyz`, `/metrics`, `/deliveries`); 0 picks a free port (logged).',
  },
  {
    name: 'ADMIN_HOST',
    group: 'admin',
    kind: 'text',
    default: '0.0.0.0',
    description: 'Address the admin HTTP server binds (`127.0.0.1` keeps it local).',
  },
  {
    name: 'ADMIN_TOKEN',
    group: 'admin',
    kind: 'secret',
    description:
      'Bearer token (at least 16 characters) that GET /deliveries on the admin server requires (`Authorization: Bearer <token>`); unset, /deliveries is off. /healthz, /readyz and /metrics stay open.',
  },
  {
    name: 'RECIPIENT_HASH_KEY',
    group: 'admin',
    kind: 'secret',
    description:
      'Key (at least 16 characters) of the HMAC-SHA-256 that stands in for recipient addresses in logs and the delivery history; `geb deliveries show --recipient` needs the same key. Unset: an unkeyed SHA-256, which a dictionary of addresses reverses (warned at start-up).',
  },
  {
    name: 'GEB_HEAP_MB',
    group: 'admin',
    kind: 'integer',
    min: 0,
    max: 1_048_576,
    description:
      "V8's old-generation size for `geb run`, in MB (read at start by the `geb` entry, which runs itself again with `--max-old-space-size`); 0 leaves Node's own sizing. Unset: half the container's memory limit (cgroup), or 128 without one; ignored when `--max-old-space-size` is already set. See docs/operations.md, Sizing.",
  },
  {
    name: 'LOG_LEVEL',
    group: 'admin',
    kind: 'choice',
    values: LOG_LEVELS,
    default: 'info',
    description: 'Lowest level of the JSON log lines written to stdout.',
  },
];

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the environment into a validated, frozen Config, or throws one CONFIG_INVALID error listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);

  const connection = readKafkaConnection(reader, problems);

  const { region, apiBaseUrl, loginBaseUrl } = readGenesysEndpoint(reader, problems);

  const allowedHosts = reader.optional('GENESYS_ALLOWED_HOSTS') ?? '';
  for (const entry of invalidAllowedHosts(allowedHosts)) {
    problems.push(`GENESYS_ALLOWED_HOSTS: "${entry}" is not a host or host:port`);
  }

  const schemaRegistry = readSchemaRegistry(reader, problems);

  const config: Config = {
    kafka: {
      ...connection,
      groupId: reader.string('KAFKA_GROUP_ID'),
      startFrom: reader.oneOf<StartFrom>('KAFKA_START_FROM'),
      sessionTimeoutMs: reader.integer('KAFKA_SESSION_TIMEOUT_MS'),
    },
    rulesFile: reader.string('RULES_FILE'),
    rulesWatchIntervalMs: reader.integer('RULES_WATCH_INTERVAL_MS'),
    rulesTemplatesDir: reader.optional('RULES_TEMPLATES_DIR'),
    genesysAllowedHosts: parseAllowedHosts(allowedHosts),
    deadLetterTopic: reader.string('DEAD_LETTER_TOPIC'),
    genesys: {
      region,
      apiBaseUrl: apiBaseUrl.replace(/\/+$/, ''),
      tokenUrl: loginBaseUrl ? `${loginBaseUrl.replace(/\/+$/, '')}/oauth/token` : '',
      clientId: reader.string('GENESYS_CLIENT_ID'),
      clientSecret: new Secret(reader.secret('GENESYS_CLIENT_SECRET')),
      requestTimeoutMs: reader.integer('GENESYS_REQUEST_TIMEOUT_MS'),
    },
    logLevel: reader.oneOf<LogLevel>('LOG_LEVEL'),
    heapMb: reader.integer('GEB_HEAP_MB'),
    delivery: readDelivery(reader),
    admin: {
      host: reader.string('ADMIN_HOST'),
      port: reader.integer('ADMIN_PORT'),
      token: reader.strongSecret('ADMIN_TOKEN', { bearer: true }),
    },
    outcomes: {
      statusChecks: reader.integer('STATUS_CHECKS'),
      statusCheckDelayMs: reader.integer('STATUS_CHECK_DELAY_MS'),
      statusCheckIntervalMs: reader.integer('STATUS_CHECK_INTERVAL_MS'),
      topic: reader.optional('OUTCOME_TOPIC'),
      suppressionDays: reader.integer('SUPPRESSION_DAYS'),
      reconcileAnalyticsLagMs: reader.integer('RECONCILE_ANALYTICS_LAG_MS'),
    },
    recipientHashKey: reader.strongSecret('RECIPIENT_HASH_KEY'),
    ledger: {
      url: reader.string('LEDGER_URL'),
      retentionDays: reader.integer('LEDGER_RETENTION_DAYS'),
      keyHeader: reader.optional('LEDGER_KEY_HEADER'),
    },
    rateLimits: {
      perClient: reader.integer('GENESYS_CLIENT_RATE_LIMIT'),
      agentlessEmailOrg: reader.integer('GENESYS_EMAIL_ORG_RATE_LIMIT'),
      windowMs: reader.integer('GENESYS_RATE_WINDOW_MS'),
      redisUrl: reader.redisUrl('REDIS_URL'),
      redisKeyPrefix: reader.string('REDIS_KEY_PREFIX'),
    },
    retry: {
      baseDelayMs: reader.integer('DELIVERY_RETRY_BASE_DELAY_MS'),
      maxDelayMs: reader.integer('DELIVERY_RETRY_MAX_DELAY_MS'),
      maxAttempts: reader.integer('DELIVERY_RETRY_MAX_ATTEMPTS'),
      maxAgeMs: reader.integer('DELIVERY_RETRY_MAX_AGE_MS'),
    },
    schemaRegistry,
    plainJsonTopics: reader.list('PLAIN_JSON_TOPICS'),
    maxEventBytes: reader.integer('MAX_EVENT_BYTES'),
    eventPrefilter: reader.oneOf<'true' | 'false'>('EVENT_PREFILTER') === 'true',
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
      `Invalid configuration:\n${problems.map((p) => `  - ${maskUrlCredentials(p)}`).join('\n')}`,
    );
  }
}

const settingsByName = new Map(SETTINGS.map((s) => [s.name, s]));

/** Where a setting's value came from, as `geb config` shows it. */
export type SettingSource = 'environment' | 'file' | 'default' | 'unset';

/** The row of a declared variable; a name missing from SETTINGS is a programming error. */
export function settingOf(name: string): Setting {
  const setting = settingsByName.get(name);
  if (!setting) throw new Error(`config variable ${name} is not declared in SETTINGS`);
  return setting;
}

/**
 * The raw value of a secret's `<NAME>_FILE`: a UTF-8 BOM and trailing whitespace go (editors and `echo` add them),
 * and a file left empty is an error, never an empty secret.
 */
function readSecretFile(fileVar: string, path: string): { value?: string; problem?: string } {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    return {
      problem: `${fileVar}: cannot read "${path}" (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    };
  }
  const value = content.replace(/^\uFEFF/, '').trimEnd();
  if (value === '') return { problem: `${fileVar}: "${path}" is empty` };
  return { value };
}

/** Where each setting's value comes from in `env`, without validating it (loadConfig does that). */
export function settingSources(env: Env = process.env): ReadonlyMap<string, SettingSource> {
  const sources = new Map<string, SettingSource>();
  for (const setting of SETTINGS) {
    const fromFile = setting.kind === 'secret' && (env[`${setting.name}_FILE`]?.trim() ?? '') !== '';
    const direct = (env[setting.name]?.trim() ?? '') !== '';
    sources.set(
      setting.name,
      fromFile ? 'file' : direct ? 'environment' : setting.default !== undefined ? 'default' : 'unset',
    );
  }
  return sources;
}

const MIN_STRONG_SECRET_CHARS = 16;

/**
 * Only RECIPIENT_HASH_KEY (or its _FILE), for `geb deliveries show --recipient`, which must hash an address exactly
 * as the running bridge does without needing the rest of the bridge's configuration.
 */
export function loadRecipientHashKey(env: Env = process.env): Secret | undefined {
  const problems: string[] = [];
  const key = new EnvReader(env, problems).strongSecret('RECIPIENT_HASH_KEY');
  throwIfInvalid(problems);
  return key;
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  /** The trimmed value, the declared default, or undefined; reports a missing required variable. */
  private raw(name: string): string | undefined {
    const setting = settingOf(name);
    const value = this.env[name]?.trim();
    if (value !== undefined && value !== '') return value;
    if (setting.default !== undefined) return setting.default;
    if (setting.required) this.problems.push(`${name} is required: ${setting.description}`);
    return undefined;
  }

  /** The row, checked to be of the kind the caller parses it as. */
  private row(name: string, kind: SettingKind): Setting {
    const setting = settingOf(name);
    if (setting.kind !== kind) throw new Error(`config variable ${name} is a ${setting.kind}, not a ${kind}`);
    return setting;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  string(name: string): string {
    return this.raw(name) ?? '';
  }

  /** A secret may also come from the file named by `<NAME>_FILE`, as container platforms mount them. */
  secret(name: string): string {
    const setting = this.row(name, 'secret');
    const fileVar = `${name}_FILE`;
    const file = this.env[fileVar]?.trim();
    const direct = this.env[name];
    if (!file) return this.raw(name) ?? '';
    if (direct !== undefined && direct !== '') {
      this.problems.push(`${name} and ${fileVar} are both set; set only one`);
      return '';
    }
    const { value, problem } = readSecretFile(fileVar, file);
    if (problem !== undefined) {
      // The file's problem stands in for the "required" one: both name the variable to fix.
      this.problems.push(setting.required ? `${problem} (${name} is required)` : problem);
    }
    return value ?? '';
  }

  /** An optional secret that, when set, must be long enough not to be guessed (a token, an HMAC key). */
  strongSecret(name: string, { bearer = false } = {}): Secret | undefined {
    const value = this.secret(name);
    if (value === '') return undefined;
    if (value.length < MIN_STRONG_SECRET_CHARS) {
      this.problems.push(
        `${name}: must be at least ${MIN_STRONG_SECRET_CHARS} characters (its value is not shown)`,
      );
    }
    // RFC 6750's token68: what an `Authorization: Bearer` header can carry.
    if (bearer && !/^[A-Za-z0-9\-._~+/]+=*$/.test(value)) {
      this.problems.push(
        `${name}: may hold only letters, digits and - . _ ~ + / (and trailing =), as a bearer token can (its value is not shown)`,
      );
    }
    return new Secret(value);
  }

  /** The content of the file a variable names, or undefined when it is not set. */
  file(name: string): string | undefined {
    this.row(name, 'pem-file');
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
    this.row(name, 'list');
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
    this.row(name, 'url');
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
    this.row(name, 'redis-url');
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!/^rediss?:\/\//.test(value)) this.problems.push(`${name}: must be a redis:// or rediss:// URL`);
    return value;
  }

  /** A whole number within the row's bounds. */
  integer(name: string): number {
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = this.row(name, 'integer');
    const value = this.raw(name);
    if (value === undefined) return 0;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: "${value}" must be a whole number from ${min} to ${max}`);
      return 0;
    }
    return n;
  }

  /** One of the row's values; T is the type the caller's Config field gives that set. */
  oneOf<T extends string = string>(name: string): T {
    const allowed = this.row(name, 'choice').values ?? [];
    const value = this.raw(name);
    if (value !== undefined && allowed.includes(value)) return value as T;
    if (value !== undefined) this.problems.push(`${name}: "${value}" must be one of ${allowed.join(', ')}`);
    return allowed[0] as T;
  }
}

/** GENESYS_REGION, or GENESYS_API_URL and GENESYS_LOGIN_URL (which win over the region's). */
function readGenesysEndpoint(reader: EnvReader, problems: string[]) {
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
  return { region, apiBaseUrl, loginBaseUrl };
}

/** SCHEMA_REGISTRY_*: undefined without SCHEMA_REGISTRY_URL. */
function readSchemaRegistry(reader: EnvReader, problems: string[]): Config['schemaRegistry'] {
  const registryUrl = reader.url('SCHEMA_REGISTRY_URL');
  const registryUser = reader.optional('SCHEMA_REGISTRY_USERNAME');
  const registryPassword = reader.secret('SCHEMA_REGISTRY_PASSWORD');
  const registryCa = reader.file('SCHEMA_REGISTRY_CA_FILE');
  const registryCert = reader.file('SCHEMA_REGISTRY_CERT_FILE');
  const registryKey = reader.file('SCHEMA_REGISTRY_KEY_FILE');
  if ((registryCert === undefined) !== (registryKey === undefined)) {
    problems.push('SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE go together: set both or neither');
  }
  if (registryUrl === undefined && (registryUser !== undefined || registryCa !== undefined)) {
    problems.push('SCHEMA_REGISTRY_* settings are given but SCHEMA_REGISTRY_URL is not set');
  }
  return registryUrl === undefined
    ? undefined
    : {
        url: registryUrl,
        username: registryUser,
        password: registryPassword === '' ? undefined : new Secret(registryPassword),
        ca: registryCa,
        cert: registryCert,
        key: registryKey === undefined ? undefined : new Secret(registryKey),
      };
}

/** The delivery engine's limits, cadence and shutdown bounds. */
function readDelivery(reader: EnvReader): Config['delivery'] {
  return {
    maxInFlight: reader.integer('MAX_IN_FLIGHT'),
    maxInFlightPerPartition: reader.integer('PARTITION_MAX_IN_FLIGHT'),
    maxQueuedPerPartition: reader.integer('PARTITION_MAX_QUEUED'),
    pauseProbeIntervalMs: reader.integer('PAUSE_PROBE_INTERVAL_MS'),
    commitIntervalMs: reader.integer('KAFKA_COMMIT_INTERVAL_MS'),
    shutdownGraceMs: reader.integer('SHUTDOWN_GRACE_MS'),
    shutdownCloseTimeoutMs: reader.integer('SHUTDOWN_CLOSE_TIMEOUT_MS'),
  };
}

function readKafkaSecurity(reader: EnvReader, problems: string[]): KafkaSecurity {
  const protocol = reader.oneOf<KafkaSecurity['protocol']>('KAFKA_SECURITY_PROTOCOL');
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
      verifyHostname: reader.oneOf('KAFKA_SSL_VERIFY_HOSTNAME') === 'true',
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
