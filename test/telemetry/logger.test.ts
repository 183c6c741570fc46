import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/secret.js';
import { createLogger, personalDataHash } from '../../src/telemetry/logger.js';
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

  it('hashes personal data stably and case-insensitively, without revealing it', () => {
    expect(personalDataHash('Ada@Example.com')).toBe(personalDataHash(' ada@example.com '));
    expect(personalDataHash('ada@example.com')).toMatch(/^[0-9a-f]{16}$/);
    expect(personalDataHash('ada@example.com')).not.toBe(personalDataHash('grace@example.com'));
  });

  it('adds no trace ids outside a span', () => {
    const logs = new LogCapture();
    createLogger('info', logs).info('no span here');
    expect(JSON.parse(logs.text)).not.toHaveProperty('trace_id');
  });
});
