import { describe, expect, it } from 'vitest';
import { MAX_KEYS_HEADER_BYTES, REPLAY_HEADERS, replayOf } from '../../src/kafka/dead-letter.js';

describe('replayOf', () => {
  it('is undefined for a record that is not a replay', () => {
    expect(replayOf({ trace: 't1' })).toBeUndefined();
  });

  it('reads the replayed rule and the original idempotency keys', () => {
    const replay = replayOf({
      [REPLAY_HEADERS.rule]: Buffer.from('crm-email'),
      [REPLAY_HEADERS.idempotencyKeys]: Buffer.from(
        JSON.stringify({ 'crm-email': 'o/0/1', welcome: 'o/0/1' }),
      ),
    });
    expect(replay?.rule).toBe('crm-email');
    expect({ ...replay?.idempotencyKeys }).toEqual({ 'crm-email': 'o/0/1', welcome: 'o/0/1' });
  });

  it('ignores a malformed, oversized or hostile key map rather than failing the event', () => {
    for (const keys of [
      'not json',
      '[1,2]',
      '"x"',
      JSON.stringify({ a: 'x'.repeat(MAX_KEYS_HEADER_BYTES) }),
    ]) {
      const replay = replayOf({ [REPLAY_HEADERS.rule]: 'r', [REPLAY_HEADERS.idempotencyKeys]: keys });
      expect(replay?.rule).toBe('r');
      expect({ ...replay?.idempotencyKeys }).toEqual({});
    }
    const hostile = replayOf({
      [REPLAY_HEADERS.idempotencyKeys]: '{"__proto__": "x", "ok": "k", "n": 5, "empty": ""}',
    });
    expect(hostile?.rule).toBeUndefined();
    expect(hostile?.idempotencyKeys['constructor']).toBeUndefined();
    expect(hostile?.idempotencyKeys['ok']).toBe('k');
    expect(hostile?.idempotencyKeys['n']).toBeUndefined();
    expect(hostile?.idempotencyKeys['empty']).toBeUndefined();
    expect(hostile?.idempotencyKeys['__proto__']).toBe('x');
  });
});
