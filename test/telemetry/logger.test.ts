import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Secret } from '../../src/secret.js';
import { createLogger, recipientHasher } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';

describe('logger redaction (the one place it is enforced)', () => {
  it('blanks secrets, tokens, authorization headers and bodies wherever a caller puts them', () => {
    const logs = new LogCapture();
    const log = createLogger('info', logs);
    log.info(
      {
        clientSecret: 'cs-value',
        config: { clientSecret: 'nested-cs', accessToken: 'at-value' },
        access_token: 'raw-token',
        headers: { authorization: 'Bearer xyz' },
        request: { body: { toAddresses: [{ email: 'ada@example.com' }] } },
        secret: new Secret('wrapped-secret'),
      },
      'something happened',
    );
    const line = logs.text;
    for (const leaked of [
      'cs-value',
      'nested-cs',
      'at-value',
      'raw-token',
      'Bearer xyz',
      'ada@example.com',
      'wrapped-secret',
    ]) {
      expect(line).not.toContain(leaked);
    }
    expect(JSON.parse(line)).toMatchObject({
      clientSecret: '[redacted]',
      secret: '[redacted]',
      msg: 'something happened',
    });
  });

  it('blanks them in child bindings, under headers one level down, and in an error logged as err', () => {
    const logs = new LogCapture();
    const error = Object.assign(new Error('call failed'), {
      body: { to: 'grace@example.com' },
      code: 'E_X',
    });
    createLogger('info', logs)
      .child({ connection: { clientSecret: 'bound-secret', name: 'eu' } })
      .child({ rule: 'r1', accessToken: 'grandchild-token' })
      .warn(
        {
          request: { method: 'POST', headers: { authorization: 'Bearer nested', accept: 'json' } },
          err: error,
          list: ['kept'],
        },
        'call failed',
      );
    const line = logs.text;
    for (const leaked of ['bound-secret', 'grandchild-token', 'Bearer nested', 'grace@example.com']) {
      expect(line).not.toContain(leaked);
    }
    expect(JSON.parse(line)).toMatchObject({
      connection: { clientSecret: '[redacted]', name: 'eu' },
      rule: 'r1',
      accessToken: '[redacted]',
      request: { method: 'POST', headers: { authorization: '[redacted]', accept: 'json' } },
      err: { type: 'Error', message: 'call failed', code: 'E_X', body: '[redacted]' },
      list: ['kept'],
    });
    // The caller's objects are not changed by logging them.
    expect(error.body).toEqual({ to: 'grace@example.com' });
  });

  it('logs an error with nothing to blank as pino would', () => {
    const logs = new LogCapture();
    createLogger('info', logs).error({ err: new TypeError('bad input') }, 'oops');
    const line = JSON.parse(logs.text) as { err: { type: string; message: string; stack: string } };
    expect(line.err).toMatchObject({ type: 'TypeError', message: 'bad input' });
    expect(line.err.stack).toContain('TypeError: bad input');
  });

  it('hashes personal data stably and case-insensitively, without revealing it, with or without a key', () => {
    for (const hash of [recipientHasher(undefined), recipientHasher(new Secret('a-recipient-hash-key'))]) {
      expect(hash('Ada@Example.com')).toBe(hash(' ada@example.com '));
      expect(hash('ada@example.com')).toMatch(/^[0-9a-f]{16}$/);
      expect(hash('ada@example.com')).not.toBe(hash('grace@example.com'));
    }
  });

  it('keys the recipient hash, so that a dictionary of addresses does not reverse it', () => {
    const address = 'ada@example.com';
    // What anyone can compute from a list of addresses, and what the bridge wrote before keys.
    const dictionary = createHash('sha256').update(address).digest('hex').slice(0, 16);
    expect(recipientHasher(undefined)(address)).toBe(dictionary);
    const keyed = recipientHasher(new Secret('first-recipient-hash-key'))(address);
    const otherKey = recipientHasher(new Secret('second-recipient-hash-key'))(address);
    expect(keyed).not.toBe(dictionary);
    expect(otherKey).not.toBe(dictionary);
    expect(keyed).not.toBe(otherKey);
    // Stable for one key: the same key (as `geb deliveries --recipient` has it) gives the same hash.
    expect(recipientHasher(new Secret('first-recipient-hash-key'))(address)).toBe(keyed);
  });

  it('adds no trace ids outside a span', () => {
    const logs = new LogCapture();
    createLogger('info', logs).info('no span here');
    expect(JSON.parse(logs.text)).not.toHaveProperty('trace_id');
  });
});
