import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, loadRecipientHashKey } from '../src/config.js';

const valid = {
  KAFKA_BROKERS: 'localhost:9092',
  RULES_FILE: 'rules.yaml',
  GENESYS_REGION: 'mypurecloud.ie',
  GENESYS_CLIENT_ID: 'client-id',
  GENESYS_CLIENT_SECRET: 'the-client-secret-value',
};

describe('admin token and recipient hash key', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function secretFile(content: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'geb-config-admin-'));
    dirs.push(dir);
    const file = join(dir, 'secret');
    writeFileSync(file, content);
    return file;
  }

  it('are unset by default', () => {
    const config = loadConfig(valid);
    expect(config.admin.token).toBeUndefined();
    expect(config.recipientHashKey).toBeUndefined();
  });

  it('are held as secrets, from the variable or its _FILE', () => {
    const config = loadConfig({
      ...valid,
      ADMIN_TOKEN: 'a-long-admin-token-value',
      RECIPIENT_HASH_KEY_FILE: secretFile('a-long-recipient-hash-key\n'),
    });
    expect(config.admin.token?.reveal()).toBe('a-long-admin-token-value');
    expect(config.recipientHashKey?.reveal()).toBe('a-long-recipient-hash-key');
    expect(JSON.stringify(config)).not.toContain('a-long-');
  });

  it('refuse a short value without echoing it', () => {
    const attempt = () => loadConfig({ ...valid, ADMIN_TOKEN: 'short-tok', RECIPIENT_HASH_KEY: 'short-key' });
    expect(attempt).toThrow(/ADMIN_TOKEN: must be at least 16 characters/);
    expect(attempt).toThrow(/RECIPIENT_HASH_KEY: must be at least 16 characters/);
    expect(attempt).not.toThrow(/short-/);
  });

  it('refuses an admin token that no Authorization header could carry', () => {
    expect(() => loadConfig({ ...valid, ADMIN_TOKEN: 'a long token with spaces' })).toThrow(
      /ADMIN_TOKEN: may hold only letters/,
    );
    expect(loadConfig({ ...valid, ADMIN_TOKEN: 'dGhlLWFkbWluLXRva2Vu+/=' }).admin.token).toBeDefined();
  });

  it('the key alone is read for geb deliveries', () => {
    expect(loadRecipientHashKey({})).toBeUndefined();
    expect(loadRecipientHashKey({ RECIPIENT_HASH_KEY: 'a-long-recipient-hash-key' })?.reveal()).toBe(
      'a-long-recipient-hash-key',
    );
    expect(() => loadRecipientHashKey({ RECIPIENT_HASH_KEY: 'short' })).toThrow(/at least 16/);
  });
});
