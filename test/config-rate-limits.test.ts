import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const valid = {
  KAFKA_BROKERS: 'localhost:9092',
  RULES_FILE: 'rules.yaml',
  GENESYS_REGION: 'mypurecloud.ie',
  GENESYS_CLIENT_ID: 'client-id',
  GENESYS_CLIENT_SECRET: 'the-client-secret-value',
};

describe('rate limit and retry configuration', () => {
  it("defaults to Genesys' limits, in-process budgets and bounded retries", () => {
    const config = loadConfig(valid);
    expect(config.rateLimits).toEqual({
      perClient: 300,
      agentlessEmailOrg: 300,
      windowMs: 60_000,
      redisUrl: undefined,
      redisKeyPrefix: 'geb:',
    });
    expect(config.retry).toEqual({
      baseDelayMs: 250,
      maxDelayMs: 30_000,
      maxAttempts: 10,
      maxAgeMs: 300_000,
    });
  });

  it('reads them from the environment and refuses a non-Redis URL without echoing it', () => {
    const config = loadConfig({
      ...valid,
      GENESYS_EMAIL_ORG_RATE_LIMIT: '60',
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      DELIVERY_RETRY_MAX_ATTEMPTS: '3',
    });
    expect(config.rateLimits.agentlessEmailOrg).toBe(60);
    expect(config.rateLimits.redisUrl).toBe('redis://127.0.0.1:6379/0');
    expect(config.retry.maxAttempts).toBe(3);
    expect(() => loadConfig({ ...valid, REDIS_URL: 'http://user:pw-secret@host' })).toThrow(
      /REDIS_URL: must be a redis:\/\//,
    );
    try {
      loadConfig({ ...valid, REDIS_URL: 'http://user:pw-secret@host' });
    } catch (error) {
      expect((error as Error).message).not.toContain('pw-secret');
    }
  });
});
