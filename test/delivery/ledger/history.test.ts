import { describe, expect, it } from 'vitest';
import { DeliveryGate, traceIdOf } from '../../../src/delivery/ledger/gate.js';
import {
  HistoryQueryError,
  formatDeliveries,
  parseHistoryParams,
  viewOf,
} from '../../../src/delivery/ledger/history.js';
import type { DeliveryRecord, Ledger } from '../../../src/delivery/ledger/ledger.js';
import type { InboundMessage } from '../../../src/kafka/message.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');

describe('history query parameters', () => {
  it('reads an event, a key, a rule, a state, a duration or a time, and a limit', () => {
    expect(parseHistoryParams({ event: 'shop.orders/2/0042' }, NOW)).toEqual({
      topic: 'shop.orders',
      partition: 2,
      offset: '42',
    });
    expect(parseHistoryParams({ key: 'order-1', since: '90m', limit: '5', state: 'in-doubt' }, NOW)).toEqual({
      key: 'order-1',
      since: new Date(NOW - 90 * 60_000),
      limit: 5,
      state: 'in-doubt',
    });
    expect(parseHistoryParams({ recipientHash: '0123456789abcdef' }, NOW)).toEqual({
      recipientHash: '0123456789abcdef',
    });
    expect(parseHistoryParams({ rule: 'r', since: '2025-12-31T00:00:00Z' }, NOW).since).toEqual(
      new Date('2025-12-31T00:00:00Z'),
    );
  });

  it('refuses what it cannot answer, saying why', () => {
    expect(() => parseHistoryParams({ since: '1h' })).toThrow(/event.*key.*rule/);
    expect(() => parseHistoryParams({ event: 'orders-7' })).toThrow(HistoryQueryError);
    expect(() => parseHistoryParams({ rule: 'r', since: 'yesterday' })).toThrow(/duration/);
    expect(() => parseHistoryParams({ rule: 'r', state: 'lost' })).toThrow(/in-doubt/);
    expect(() => parseHistoryParams({ rule: 'r', limit: '0' })).toThrow(/limit/);
    // A hash, never an address: an address in a URL would reach proxy logs.
    expect(() => parseHistoryParams({ recipientHash: 'ada@example.com' })).toThrow(/16 hexadecimal/);
  });
});

describe('the history as printed', () => {
  const record: DeliveryRecord = {
    rule: 'welcome',
    idempotencyKey: 't/0/1',
    state: 'dead-lettered',
    topic: 't',
    partition: 0,
    offset: '1',
    key: null,
    attempts: 3,
    errorCode: 'GENESYS_REJECTED',
    reason: 'Genesys answered 400',
    skipped: 0,
    owner: 'host/1/abc',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:01.000Z',
  };

  it('shows the reason of a dead letter and leaves the owning process out', () => {
    const view = viewOf(record);
    expect(view).not.toHaveProperty('owner');
    expect(view.event).toBe('t/0/1');
    const text = formatDeliveries([view]);
    expect(text).toContain('t/0/1  rule welcome  DEAD-LETTERED');
    expect(text).toMatch(/reason\s+GENESYS_REJECTED: Genesys answered 400/);
    expect(text).toMatch(/traceId\s+-/);
  });
});

describe('idempotency key and trace id of an event', () => {
  const message = (headers: InboundMessage['headers']): InboundMessage => ({
    topic: 'orders',
    partition: 3,
    offset: '17',
    key: Buffer.from('k'),
    value: null,
    headers,
    timestamp: '0',
  });
  const ledger = {} as Ledger;

  it('is the coordinates by default, or the configured header when the event has it', () => {
    expect(new DeliveryGate(ledger, undefined).idempotencyKey(message({ 'event-id': 'e-1' }))).toBe(
      'orders/3/17',
    );
    const byHeader = new DeliveryGate(ledger, 'event-id');
    expect(byHeader.idempotencyKey(message({ 'event-id': Buffer.from('e-1') }))).toBe('e-1');
    expect(byHeader.idempotencyKey(message({}))).toBe('orders/3/17');
  });

  it("takes the trace id from the producer's traceparent when no span is active", () => {
    expect(
      traceIdOf(message({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })),
    ).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(
      traceIdOf(message({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' })),
    ).toBe(undefined);
    expect(traceIdOf(message({ traceparent: 'garbage' }))).toBe(undefined);
    expect(traceIdOf(message({}))).toBe(undefined);
  });
});
