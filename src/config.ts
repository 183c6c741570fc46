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
  /** Absent when SCHEMA_REGISTRY_URL is not set. */
  readonly schemaRegistry: SchemaRegistryConfig | undefined;
  /** Topic names and globs whose unframed values are read as plain JSON. */
  readonly plainJsonTopics: readonly string[];
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
