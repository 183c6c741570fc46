import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { topicFilter } from '../src/kafka/topic-filter.js';
import { tempDir } from './support/temp.js';

const valid = {
  KAFKA_BROKERS: 'localhost:9092',
  RULES_FILE: 'rules.yaml',
  GENESYS_REGION: 'mypurecloud.ie',
  GENESYS_CLIENT_ID: 'client-id',
  GENESYS_CLIENT_SECRET: 'the-client-secret-value',
};

describe('schema registry configuration', () => {
  it('is absent by default, with plain JSON accepted on every topic', () => {
    const config = loadConfig(valid);
    expect(config.schemaRegistry).toBeUndefined();
    expect(config.plainJsonTopics).toEqual(['*']);
  });

  it('reads URL, Basic credentials (password kept secret) and TLS files', async () => {
    const dir = await tempDir('geb-tls-');
    await writeFile(join(dir, 'ca.pem'), 'CA-PEM');
    const config = loadConfig({
      ...valid,
      SCHEMA_REGISTRY_URL: 'https://registry.example:8081',
      SCHEMA_REGISTRY_USERNAME: 'api-key',
      SCHEMA_REGISTRY_PASSWORD: 'api-secret-value',
      SCHEMA_REGISTRY_CA_FILE: join(dir, 'ca.pem'),
    });
    expect(config.schemaRegistry?.url).toBe('https://registry.example:8081');
    expect(config.schemaRegistry?.username).toBe('api-key');
    expect(config.schemaRegistry?.password?.reveal()).toBe('api-secret-value');
    expect(JSON.stringify(config)).not.toContain('api-secret-value');
    expect(config.schemaRegistry?.ca).toBe('CA-PEM');
  });

  it('refuses a client certificate without its key, and settings without a URL', () => {
    expect(() => loadConfig({ ...valid, SCHEMA_REGISTRY_USERNAME: 'u' })).toThrow(
      /SCHEMA_REGISTRY_URL is not set/,
    );
    expect(() =>
      loadConfig({
        ...valid,
        SCHEMA_REGISTRY_URL: 'http://r:8081',
        SCHEMA_REGISTRY_CERT_FILE: '/nonexistent.pem',
      }),
    ).toThrow(/SCHEMA_REGISTRY_CERT_FILE/);
  });

  it('matches PLAIN_JSON_TOPICS names and globs', () => {
    const allow = topicFilter(['shop.*', 'accounts']);
    expect(allow('shop.orders')).toBe(true);
    expect(allow('accounts')).toBe(true);
    expect(allow('accounts.v2')).toBe(false);
    expect(allow('shopX')).toBe(false);
    expect(topicFilter(['none'])('shop.orders')).toBe(false);
    expect(topicFilter(['*'])('anything')).toBe(true);
  });
});
