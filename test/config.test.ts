import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SETTINGS, loadConfig, loadKafkaConnectionConfig, settingSources } from '../src/config.js';
import { BridgeError } from '../src/errors.js';
import { maskUrlCredentials } from '../src/secret.js';

const valid = {
  KAFKA_BROKERS: 'localhost:9092, kafka-2:9092',
  RULES_FILE: 'rules.yaml',
  GENESYS_REGION: 'mypurecloud.ie',
  GENESYS_CLIENT_ID: 'client-id',
  GENESYS_CLIENT_SECRET: 'the-client-secret-value',
};

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(BridgeError);
    expect((error as BridgeError).code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'geb-config-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('loadConfig', () => {
  it('trims a UTF-8 BOM and trailing whitespace from a _FILE secret', async () => {
    const dir = await tempDir();
    const { GENESYS_CLIENT_SECRET: _, ...env } = valid;
    await writeFile(join(dir, 'bom'), '\uFEFFs3cret-value \t\r\n\n');
    const config = loadConfig({
      ...env,
      GENESYS_CLIENT_SECRET_FILE: join(dir, 'bom'),
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'bridge',
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'bom'),
    });
    expect(config.genesys.clientSecret.reveal()).toBe('s3cret-value');
    expect(config.kafka.security.sasl?.password.reveal()).toBe('s3cret-value');
  });

  it.each([
    ['empty', ''],
    ['only a newline', '\n'],
    ['only a BOM and spaces', '\uFEFF  \n'],
  ])('refuses a _FILE secret that is %s, naming the variable', async (_what, content) => {
    const dir = await tempDir();
    const file = join(dir, 'secret');
    await writeFile(file, content);
    const { GENESYS_CLIENT_SECRET: _, ...env } = valid;
    expect(problemsOf({ ...env, GENESYS_CLIENT_SECRET_FILE: file })).toContain(
      `GENESYS_CLIENT_SECRET_FILE: "${file}" is empty (GENESYS_CLIENT_SECRET is required)`,
    );
    // Optional secrets too: a file named and left empty is a mistake, not "no password".
    expect(
      problemsOf({
        ...valid,
        SCHEMA_REGISTRY_URL: 'https://registry.example',
        SCHEMA_REGISTRY_USERNAME: 'key',
        SCHEMA_REGISTRY_PASSWORD_FILE: file,
      }),
    ).toContain(`SCHEMA_REGISTRY_PASSWORD_FILE: "${file}" is empty`);
  });

  it.each([
    ['GENESYS_API_URL', 'ftp://user:api-pass-word@host/x'],
    ['SCHEMA_REGISTRY_URL', 'ldap://key:registry-pass-word@registry:8081'],
    ['GENESYS_LOGIN_URL', 'https://user:login-pass@word@ host'],
  ])('masks the user-info of a URL quoted in an error (%s)', (name, value) => {
    const message = problemsOf({ ...valid, [name]: value });
    expect(message).toContain(name);
    expect(message).not.toMatch(/pass-word|login-pass|word@/);
    expect(message).toContain('://***@');
  });

  it('resolves a region to its API and token URLs, with defaults for the rest', () => {
    const config = loadConfig(valid);
    expect(config.kafka.brokers).toEqual(['localhost:9092', 'kafka-2:9092']);
    expect(config.kafka.groupId).toBe('genesys-event-bridge');
    expect(config.kafka.startFrom).toBe('latest');
    expect(config.genesys.apiBaseUrl).toBe('https://api.mypurecloud.ie');
    expect(config.genesys.tokenUrl).toBe('https://login.mypurecloud.ie/oauth/token');
    expect(config.genesys.requestTimeoutMs).toBe(10_000);
    expect(config.deadLetterTopic).toBe('{topic}.dlq');
    expect(Object.isFrozen(config.genesys)).toBe(true);
  });

  it('uses override URLs, which make the region optional', () => {
    const { GENESYS_REGION: _, ...env } = valid;
    const config = loadConfig({
      ...env,
      GENESYS_API_URL: 'http://127.0.0.1:8089/',
      GENESYS_LOGIN_URL: 'http://127.0.0.1:8089',
    });
    expect(config.genesys.apiBaseUrl).toBe('http://127.0.0.1:8089');
    expect(config.genesys.tokenUrl).toBe('http://127.0.0.1:8089/oauth/token');
  });

  it('names every missing required variable at once', () => {
    const message = problemsOf({});
    for (const name of [
      'KAFKA_BROKERS',
      'RULES_FILE',
      'GENESYS_CLIENT_ID',
      'GENESYS_CLIENT_SECRET',
      'GENESYS_REGION',
    ]) {
      expect(message).toContain(name);
    }
  });

  it.each([
    [{ GENESYS_REGION: 'mypurecloud.xx' }, 'GENESYS_REGION: "mypurecloud.xx" is not a Genesys Cloud region'],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS: "localhost" is not host:port'],
    [{ GENESYS_REQUEST_TIMEOUT_MS: '10s' }, 'GENESYS_REQUEST_TIMEOUT_MS: "10s" must be a whole number'],
    [{ KAFKA_START_FROM: 'beginning' }, 'KAFKA_START_FROM: "beginning" must be one of earliest, latest'],
    [{ GENESYS_API_URL: 'not a url' }, 'GENESYS_API_URL: "not a url" is not a URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: "loud" must be one of'],
  ])('refuses a malformed variable %j', (override, expected) => {
    expect(problemsOf({ ...valid, ...override })).toContain(expected);
  });

  it('reads a secret from a _FILE variable, trims the trailing newline, and never prints it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'secret');
    await writeFile(file, 'from-file-secret\n');
    const { GENESYS_CLIENT_SECRET: _, ...env } = valid;
    const config = loadConfig({ ...env, GENESYS_CLIENT_SECRET_FILE: file });
    expect(config.genesys.clientSecret.reveal()).toBe('from-file-secret');
    expect(JSON.stringify(config)).not.toContain('from-file-secret');
    expect(String(config.genesys.clientSecret)).toBe('[redacted]');

    expect(problemsOf({ ...valid, GENESYS_CLIENT_SECRET_FILE: file })).toContain(
      'GENESYS_CLIENT_SECRET and GENESYS_CLIENT_SECRET_FILE are both set',
    );
    const missing = problemsOf({ ...env, GENESYS_CLIENT_SECRET_FILE: join(dir, 'nope') });
    expect(missing).toContain('GENESYS_CLIENT_SECRET_FILE: cannot read');
  });

  it('reads Kafka TLS and SASL settings, with secrets wrapped', async () => {
    const dir = await tempDir();
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    const config = loadConfig({
      ...valid,
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      KAFKA_SASL_USERNAME: 'bridge',
      KAFKA_SASL_PASSWORD: 'kafka-pw',
    });
    expect(config.kafka.security.tls?.verifyHostname).toBe(true);
    expect(config.kafka.security.tls?.ca).toContain('BEGIN CERTIFICATE');
    expect(config.kafka.security.sasl).toMatchObject({ mechanism: 'scram-sha-256', username: 'bridge' });
    expect(config.kafka.security.sasl?.password.reveal()).toBe('kafka-pw');
    expect(JSON.stringify(config)).not.toContain('kafka-pw');
  });

  it.each([
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_MECHANISM is required with SASL_SSL'],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'GSSAPI' },
      'KAFKA_SASL_MECHANISM: "gssapi" must be one of',
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN' },
      'KAFKA_SASL_USERNAME is required',
    ],
    [{ KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_USERNAME set, but KAFKA_SECURITY_PROTOCOL is PLAINTEXT'],
    [
      { KAFKA_SECURITY_PROTOCOL: 'TLS' },
      'KAFKA_SECURITY_PROTOCOL: "TLS" must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL',
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: '/no/such/ca.pem' },
      'KAFKA_SSL_CA_FILE: cannot read "/no/such/ca.pem"',
    ],
  ])('refuses an incomplete Kafka security setting %j', (override, expected) => {
    expect(problemsOf({ ...valid, ...override })).toContain(expected);
  });

  it('never echoes the secret in an error', () => {
    expect(problemsOf({ ...valid, GENESYS_REGION: 'bad' })).not.toContain(valid.GENESYS_CLIENT_SECRET);
  });

  it('reads the delivery bounds, intervals and admin port, with defaults', () => {
    expect(loadConfig(valid).delivery).toEqual({
      maxInFlight: 32,
      maxInFlightPerPartition: 8,
      maxQueuedPerPartition: 1000,
      pauseProbeIntervalMs: 15_000,
      commitIntervalMs: 1000,
      shutdownGraceMs: 10_000,
      shutdownCloseTimeoutMs: 10_000,
    });
    expect(loadConfig(valid).admin).toEqual({ host: '0.0.0.0', port: 8080 });
    const config = loadConfig({ ...valid, PARTITION_MAX_IN_FLIGHT: '2', ADMIN_PORT: '0' });
    expect(config.delivery.maxInFlightPerPartition).toBe(2);
    expect(config.admin.port).toBe(0);
    expect(problemsOf({ ...valid, MAX_IN_FLIGHT: '0' })).toContain(
      'MAX_IN_FLIGHT: "0" must be a whole number',
    );
    expect(problemsOf({ ...valid, ADMIN_PORT: '70000' })).toContain('ADMIN_PORT: "70000"');
  });

  it('declares each variable once, with the fields its kind needs', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of SETTINGS) {
      expect(s.description, s.name).not.toBe('');
      if (s.kind === 'integer') expect([s.min, s.max], s.name).not.toContain(undefined);
      if (s.kind === 'choice') expect(s.values?.length, s.name).toBeGreaterThan(1);
      if (s.default !== undefined && s.kind === 'integer') {
        expect(Number(s.default), s.name).toBeGreaterThanOrEqual(s.min ?? 0);
        expect(Number(s.default), s.name).toBeLessThanOrEqual(s.max ?? 0);
      }
      if (s.default !== undefined && s.kind === 'choice') expect(s.values, s.name).toContain(s.default);
    }
  });

  it('reads every variable of the catalogue (a row without a read would be documented but ignored)', () => {
    const read = new Set<string>();
    const env: Record<string, string> = {
      ...valid,
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      SCHEMA_REGISTRY_URL: 'https://registry.example',
    };
    const spy = new Proxy(env, {
      get(target, key) {
        if (typeof key === 'string') read.add(key).add(key.replace(/_FILE$/, ''));
        return target[key as string];
      },
    });
    try {
      loadConfig(spy);
    } catch {
      // Incomplete SASL settings are refused; only which variables were looked at matters here.
    }
    expect(SETTINGS.map((s) => s.name).filter((name) => !read.has(name))).toEqual([]);
  });

  it('takes ranges from the catalogue: a bound is accepted, one past it refused', () => {
    expect(loadConfig({ ...valid, KAFKA_SESSION_TIMEOUT_MS: '1000' }).kafka.sessionTimeoutMs).toBe(1000);
    expect(problemsOf({ ...valid, KAFKA_SESSION_TIMEOUT_MS: '999' })).toContain(
      'KAFKA_SESSION_TIMEOUT_MS: "999" must be a whole number from 1000 to 3600000',
    );
  });

  it('tells where each value came from: environment, file or default', async () => {
    const file = join(await tempDir(), 'secret');
    await writeFile(file, 'from-file');
    const { GENESYS_CLIENT_SECRET: _, ...env } = valid;
    const sources = settingSources({ ...env, GENESYS_CLIENT_SECRET_FILE: file });
    expect(sources.get('KAFKA_BROKERS')).toBe('environment');
    expect(sources.get('GENESYS_CLIENT_SECRET')).toBe('file');
    expect(sources.get('KAFKA_GROUP_ID')).toBe('default');
    expect(sources.get('REDIS_URL')).toBe('unset');
  });

  it('reads the Kafka connection alone for commands like geb dlq replay, with the same checks', () => {
    expect(loadKafkaConnectionConfig({ KAFKA_BROKERS: 'a:9092,b:9093' }).brokers).toEqual([
      'a:9092',
      'b:9093',
    ]);
    expect(() => loadKafkaConnectionConfig({ KAFKA_BROKERS: 'localhost' })).toThrow(
      'KAFKA_BROKERS: "localhost" is not host:port',
    );
    expect(() =>
      loadKafkaConnectionConfig({ KAFKA_BROKERS: 'a:1', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }),
    ).toThrow('KAFKA_SASL_MECHANISM is required with SASL_SSL');
  });
});

describe('maskUrlCredentials', () => {
  it.each([
    ['postgres://geb:pw@db:5432/geb', 'postgres://***@db:5432/geb'],
    ['rediss://:pw@redis:6380/0', 'rediss://***@redis:6380/0'],
    ['redis://only-a-password@redis', 'redis://***@redis'],
    ['https://user:p@ss@host/path?q=a@b', 'https://***@host/path?q=a@b'],
    [
      'error: "http://u:p@h" and sasl_ssl://k:s@broker:9093',
      'error: "http://***@h" and sasl_ssl://***@broker:9093',
    ],
    [
      'no credentials: https://api.mypurecloud.ie/x and a@b.co',
      'no credentials: https://api.mypurecloud.ie/x and a@b.co',
    ],
  ])('%s', (text, masked) => {
    expect(maskUrlCredentials(text)).toBe(masked);
  });
});
