import { describe, expect, it } from 'vitest';
import { errorFromResponse } from '../../src/genesys/client.js';

const request = {
  method: 'POST' as const,
  path: '/api/v2/outbound/contactlists/abc-123/contacts?priority=true',
  body: {},
};

describe('errorFromResponse: every Genesys status has one meaning', () => {
  it.each([
    [400, 'GENESYS_REJECTED', 'dead-letter'],
    [404, 'GENESYS_REJECTED', 'dead-letter'],
    [422, 'GENESYS_REJECTED', 'dead-letter'],
    [401, 'GENESYS_UNAUTHORIZED', 'pause'],
    [403, 'GENESYS_FORBIDDEN', 'pause'],
    [408, 'GENESYS_UNAVAILABLE', 'retry'],
    [429, 'GENESYS_RATE_LIMITED', 'retry'],
    [500, 'GENESYS_UNAVAILABLE', 'retry'],
    [503, 'GENESYS_UNAVAILABLE', 'retry'],
  ])('HTTP %i → %s (%s)', (status, code, disposition) => {
    const error = errorFromResponse(request, status, { code: 'x' }, {}, 'corr-1');
    expect(error.code).toBe(code);
    expect(error.disposition).toBe(disposition);
    expect(error.correlationId).toBe('corr-1');
    expect(error.message).toContain('/contactlists/{contactListId}/contacts');
    expect(error.message).not.toContain('abc-123');
  });

  it('takes the wait of a 429 from Retry-After, or from the message when the header is gone', () => {
    expect(errorFromResponse(request, 429, undefined, { 'retry-after': '7' }, undefined).retryAfterMs).toBe(
      7000,
    );
    const body = {
      message: 'Rate limit exceeded the maximum. Retry the request in [42] seconds',
      code: 'too.many.requests.retry.after',
    };
    expect(errorFromResponse(request, 429, body, {}, undefined).retryAfterMs).toBe(42_000);
  });
});
