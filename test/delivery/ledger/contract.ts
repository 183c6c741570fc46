import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BeginInput, Ledger } from '../../../src/delivery/ledger/ledger.js';

export interface LedgerHarness {
  /** A ledger over the same storage each time: called again after close() to check what survived. */
  open(): Promise<Ledger>;
  /** Removes the storage. */
  destroy(): Promise<void>;
}

/** The behaviour every ledger backend must have: run once per backend by a test file of its own. */
export function ledgerContract(name: string, harness: () => Promise<LedgerHarness>): void {
  describe(`ledger contract: ${name}`, () => {
    let h: LedgerHarness;
    let ledger: Ledger;

    beforeEach(async () => {
      h = await harness();
      ledger = await h.open();
    });
    afterEach(async () => {
      await ledger.close();
      await h.destroy();
    });

    const input = (over: Partial<BeginInput> = {}): BeginInput => ({
      rule: 'welcome-email',
      idempotencyKey: `orders/0/${Math.floor(Math.random() * 1e9)}`,
      topic: 'orders',
      partition: 0,
      offset: '42',
      key: 'order-1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      recipientHash: 'a1b2c3d4e5f60718',
      owner: 'bridge-a',
      ...over,
    });

    it('claims a delivery once; a second claim sees the pending record', async () => {
      const first = await ledger.begin(input({ idempotencyKey: 'k1' }));
      expect(first.claimed).toBe(true);
      expect(first.record).toMatchObject({
        state: 'pending',
        rule: 'welcome-email',
        idempotencyKey: 'k1',
        topic: 'orders',
        partition: 0,
        offset: '42',
        key: 'order-1',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        recipientHash: 'a1b2c3d4e5f60718',
        owner: 'bridge-a',
        attempts: 0,
        skipped: 0,
      });
      const second = await ledger.begin(input({ idempotencyKey: 'k1', owner: 'bridge-b' }));
      expect(second.claimed).toBe(false);
      expect(second.record.owner).toBe('bridge-a');
      // The same idempotency key under another rule is another delivery.
      expect((await ledger.begin(input({ idempotencyKey: 'k1', rule: 'other' }))).claimed).toBe(true);
    });

    it('lets exactly one of many concurrent claims win', async () => {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => ledger.begin(input({ idempotencyKey: 'race', owner: `b${i}` }))),
      );
      expect(results.filter((r) => r.claimed)).toHaveLength(1);
    });

    it('lands every one of many claims made in one turn, each durable once it resolves', async () => {
      // One turn: the backends group these into one write (group commit); per claim, the result must still be what
      // claims made one after the other give, the first of two claims of one delivery winning.
      const claims = [
        ...Array.from({ length: 40 }, (_, i) =>
          ledger.begin(input({ idempotencyKey: `turn-${i}`, offset: String(i), owner: `o${i % 3}` })),
        ),
        ...Array.from({ length: 5 }, (_, i) =>
          ledger.begin(input({ idempotencyKey: 'turn-dup', owner: `d${i}` })),
        ),
      ];
      const results = await Promise.all(claims);
      expect(results.slice(0, 40).every((r) => r.claimed)).toBe(true);
      expect(results.slice(40).map((r) => r.claimed)).toEqual([true, false, false, false, false]);
      expect(results.slice(41).every((r) => r.record.owner === 'd0')).toBe(true);
      expect(results[7]?.record).toMatchObject({ idempotencyKey: 'turn-7', offset: '7', owner: 'o1' });
      // And a later turn sees them all taken.
      const again = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          ledger.begin(input({ idempotencyKey: `turn-${i}`, owner: 'late' })),
        ),
      );
      expect(again.filter((r) => r.claimed)).toEqual([]);

      // A claim made right before a close still lands.
      const last = ledger.begin(input({ idempotencyKey: 'turn-last' }));
      await ledger.close();
      expect((await last).claimed).toBe(true);
      ledger = await h.open();
      expect(await ledger.lookup({ rule: 'welcome-email', idempotencyKey: 'turn-last' })).toMatchObject({
        state: 'pending',
      });
      for (let i = 0; i < 40; i++) {
        expect(await ledger.lookup({ rule: 'welcome-email', idempotencyKey: `turn-${i}` })).toMatchObject({
          state: 'pending',
          offset: String(i),
          owner: `o${i % 3}`,
        });
      }
      expect(await ledger.lookup({ rule: 'welcome-email', idempotencyKey: 'turn-dup' })).toMatchObject({
        owner: 'd0',
      });
    });

    it('records a send with the Genesys ids, and counts skipped redeliveries', async () => {
      const ref = { rule: 'welcome-email', idempotencyKey: 'sent-1' };
      await ledger.begin(input(ref));
      await ledger.markSent(ref, { genesysId: 'conv-1', correlationId: 'corr-1', attempts: 2 });
      await ledger.markSkipped(ref);
      await ledger.markSkipped(ref);
      expect(await ledger.lookup(ref)).toMatchObject({
        state: 'sent',
        genesysId: 'conv-1',
        correlationId: 'corr-1',
        attempts: 2,
        skipped: 2,
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      });
      expect(await ledger.lookup({ rule: 'welcome-email', idempotencyKey: 'never' })).toBeUndefined();
    });

    it('records failures and dead letters, with or without an earlier claim', async () => {
      const origin = { topic: 'orders', partition: 1, offset: '7', key: null };
      const claimed = { rule: 'r', idempotencyKey: 'orders/1/7' };
      await ledger.begin(input({ ...claimed, ...origin }));
      await ledger.markFailed(
        { ...claimed, ...origin },
        { errorCode: 'GENESYS_REJECTED', reason: 'bad request', attempts: 1, correlationId: 'c9' },
      );
      expect(await ledger.lookup(claimed)).toMatchObject({ state: 'failed', errorCode: 'GENESYS_REJECTED' });
      await ledger.markDeadLettered(
        { ...claimed, ...origin },
        { errorCode: 'GENESYS_REJECTED', reason: 'bad request' },
      );
      expect(await ledger.lookup(claimed)).toMatchObject({
        state: 'dead-lettered',
        errorCode: 'GENESYS_REJECTED',
        reason: 'bad request',
        correlationId: 'c9',
        attempts: 1,
      });

      const unclaimed = { rule: 'r', idempotencyKey: 'orders/1/8' };
      await ledger.markDeadLettered(
        { ...unclaimed, ...origin, offset: '8' },
        { errorCode: 'TEMPLATE_VARIABLE_MISSING', reason: 'customer.email is missing' },
      );
      expect(await ledger.lookup(unclaimed)).toMatchObject({
        state: 'dead-lettered',
        offset: '8',
        key: null,
        attempts: 0,
        reason: 'customer.email is missing',
      });
    });

    it('resolves a pending record of another owner once: take-over and in-doubt are compare-and-set', async () => {
      const ref = { rule: 'r', idempotencyKey: 'left-pending' };
      await ledger.begin(input({ ...ref, owner: 'dead-bridge' }));
      const [a, b] = await Promise.all([
        ledger.takeOver(input({ ...ref, owner: 'bridge-a', traceId: 'aa'.repeat(16) }), 'dead-bridge'),
        ledger.takeOver(input({ ...ref, owner: 'bridge-b', traceId: 'bb'.repeat(16) }), 'dead-bridge'),
      ]);
      expect([a, b].filter((r) => r !== undefined)).toHaveLength(1);
      expect((a ?? b)?.traceId).toBe(a ? 'aa'.repeat(16) : 'bb'.repeat(16));
      const winner = (a ?? b)?.owner;
      expect(await ledger.markInDoubt(ref, 'dead-bridge', 'crashed')).toBeUndefined();
      expect(await ledger.markInDoubt(ref, winner, 'crashed mid-call')).toMatchObject({
        state: 'in-doubt',
        reason: 'crashed mid-call',
      });
      expect(await ledger.takeOver(input({ ...ref, owner: 'bridge-c' }), winner)).toBeUndefined();
      // A late answer of the call in flight is the truth: it wins over in-doubt.
      await ledger.markSent(ref, { genesysId: 'late', attempts: 1 });
      expect(await ledger.lookup(ref)).toMatchObject({ state: 'sent', genesysId: 'late' });
    });

    it('reopens a dead-lettered or failed record for a replay, once: compare-and-set on the state and owner', async () => {
      const origin = { topic: 'orders', partition: 1, offset: '9', key: null };
      const ref = { rule: 'r', idempotencyKey: 'orders/1/9' };
      await ledger.begin(input({ ...ref, owner: 'bridge-a' }));
      await ledger.markDeadLettered(
        { ...ref, ...origin },
        { errorCode: 'GENESYS_REJECTED', reason: 'bad request', attempts: 1 },
      );
      expect(await ledger.reopen(input({ ...ref, owner: 'bridge-b' }), 'someone-else')).toBeUndefined();
      const [a, b] = await Promise.all([
        ledger.reopen(input({ ...ref, owner: 'bridge-b', traceId: 'bb'.repeat(16) }), 'bridge-a'),
        ledger.reopen(input({ ...ref, owner: 'bridge-c', traceId: 'cc'.repeat(16) }), 'bridge-a'),
      ]);
      expect([a, b].filter((r) => r !== undefined)).toHaveLength(1);
      expect(a ?? b).toMatchObject({ state: 'pending', attempts: 1, offset: '42' });
      await ledger.markSent(ref, { genesysId: 'conv-2', attempts: 2 });
      // Sent is final: a second replay of the same dead letter cannot reopen it.
      expect(await ledger.reopen(input({ ...ref, owner: 'bridge-d' }), (a ?? b)?.owner)).toBeUndefined();
      expect(await ledger.lookup(ref)).toMatchObject({ state: 'sent', genesysId: 'conv-2' });

      // A render failure never claimed (no owner); and a failed record (its dead-letter write owed or made).
      const unclaimed = { rule: 'r', idempotencyKey: 'orders/1/10' };
      await ledger.markFailed(
        { ...unclaimed, ...origin, offset: '10' },
        { errorCode: 'TEMPLATE_VARIABLE_MISSING', reason: 'name is missing' },
      );
      expect(await ledger.reopen(input({ ...unclaimed, owner: 'bridge-b' }), undefined)).toMatchObject({
        state: 'pending',
        owner: 'bridge-b',
      });
      // Pending, in-doubt and unknown records are not failures: nothing to reopen.
      expect(await ledger.reopen(input({ ...unclaimed, owner: 'bridge-c' }), 'bridge-b')).toBeUndefined();
      expect(
        await ledger.reopen(input({ rule: 'r', idempotencyKey: 'never', owner: 'bridge-b' }), undefined),
      ).toBeUndefined();
    });

    it('records what became of a send, only after an acceptance, and skipped deliveries without a claim', async () => {
      const origin = { topic: 'orders', partition: 0, offset: '9', key: 'o-9' };
      const sent = { rule: 'r', idempotencyKey: 'status-1', ...origin };
      await ledger.begin(input(sent));
      // Not sent yet: a status has nothing to say about it.
      expect(await ledger.markOutcome(sent, 'delivered', {})).toBe(false);
      await ledger.markSent(sent, { genesysId: 'conv-s', correlationId: 'corr-s', attempts: 1 });
      expect(await ledger.markOutcome(sent, 'unknown', { reason: 'no deliveryStatus yet' })).toBe(true);
      expect(await ledger.lookup(sent)).toMatchObject({ state: 'unknown', reason: 'no deliveryStatus yet' });
      expect(
        await ledger.markOutcome(sent, 'bounced', {
          errorCode: 'email.delivery.failed',
          reason: '550 <address>',
        }),
      ).toBe(true);
      expect(await ledger.lookup(sent)).toMatchObject({
        state: 'bounced',
        genesysId: 'conv-s',
        correlationId: 'corr-s',
        errorCode: 'email.delivery.failed',
        reason: '550 <address>',
        recipientHash: 'a1b2c3d4e5f60718',
      });
      // Final: a later check cannot turn a bounce into a delivery.
      expect(await ledger.markOutcome(sent, 'delivered', {})).toBe(false);
      expect((await ledger.query({ state: 'bounced' })).map((r) => r.idempotencyKey)).toEqual(['status-1']);

      const skipped = { rule: 'r', idempotencyKey: 'expired-1', ...origin, offset: '10' };
      expect(
        await ledger.markOutcome(skipped, 'expired', { reason: 'older than 1h', recipientHash: 'ffee' }),
      ).toBe(true);
      expect(await ledger.lookup(skipped)).toMatchObject({
        state: 'expired',
        offset: '10',
        recipientHash: 'ffee',
        attempts: 0,
      });
      expect(await ledger.markOutcome(skipped, 'suppressed', {})).toBe(false);
    });

    it('takes an in-doubt record back to pending once, for one claimant', async () => {
      const ref = { rule: 'r', idempotencyKey: 'reclaim-me' };
      await ledger.begin(input({ ...ref, owner: 'dead' }));
      expect(await ledger.reclaimInDoubt(input({ ...ref, owner: 'a' }))).toBeUndefined();
      await ledger.markInDoubt(ref, 'dead', 'crashed');
      const [a, b] = await Promise.all([
        ledger.reclaimInDoubt(input({ ...ref, owner: 'a' })),
        ledger.reclaimInDoubt(input({ ...ref, owner: 'b' })),
      ]);
      expect([a, b].filter((r) => r !== undefined)).toHaveLength(1);
      expect(await ledger.lookup(ref)).toMatchObject({ state: 'pending', owner: (a ?? b)?.owner });
    });

    it('releases only its own pending record', async () => {
      const ref = { rule: 'r', idempotencyKey: 'release-me' };
      await ledger.begin(input({ ...ref, owner: 'bridge-a' }));
      await ledger.release(ref, 'bridge-b');
      expect(await ledger.lookup(ref)).toBeDefined();
      await ledger.release(ref, 'bridge-a');
      expect(await ledger.lookup(ref)).toBeUndefined();
      expect((await ledger.begin(input(ref))).claimed).toBe(true);
    });

    it('answers queries by event, key, rule, state and time, newest first', async () => {
      for (let i = 0; i < 5; i++) {
        await ledger.begin(
          input({
            rule: i % 2 ? 'odd' : 'even',
            idempotencyKey: `t/0/${i}`,
            topic: 't',
            offset: String(i),
            key: `k${i}`,
            recipientHash: i === 2 ? '00000000000000aa' : 'a1b2c3d4e5f60718',
          }),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
      await ledger.markSent({ rule: 'odd', idempotencyKey: 't/0/3' }, { genesysId: 'g3', attempts: 1 });

      expect(
        (await ledger.query({ topic: 't', partition: 0, offset: '2' })).map((r) => r.idempotencyKey),
      ).toEqual(['t/0/2']);
      expect((await ledger.query({ key: 'k4' })).map((r) => r.offset)).toEqual(['4']);
      expect((await ledger.query({ key: 't/0/1' })).map((r) => r.offset)).toEqual(['1']);
      expect((await ledger.query({ rule: 'odd' })).map((r) => r.offset)).toEqual(['3', '1']);
      expect((await ledger.query({ state: 'sent' })).map((r) => r.genesysId)).toEqual(['g3']);
      expect((await ledger.query({ recipientHash: '00000000000000aa' })).map((r) => r.offset)).toEqual(['2']);
      expect((await ledger.query({ rule: 'even', limit: 2 })).map((r) => r.offset)).toEqual(['4', '2']);
      expect(await ledger.query({ since: new Date(Date.now() + 60_000) })).toEqual([]);
      expect(await ledger.query({ since: new Date(Date.now() - 60_000) })).toHaveLength(5);
    });

    it('keeps records across a restart and expires the old ones', async () => {
      const ref = { rule: 'r', idempotencyKey: 'durable' };
      await ledger.begin(input(ref));
      await ledger.markSent(ref, { genesysId: 'conv-d', correlationId: 'corr-d', attempts: 1 });
      await ledger.begin(input({ rule: 'r', idempotencyKey: 'still-pending', owner: 'crashed' }));
      await ledger.close();

      ledger = await h.open();
      expect(await ledger.lookup(ref)).toMatchObject({
        state: 'sent',
        genesysId: 'conv-d',
        correlationId: 'corr-d',
      });
      expect(await ledger.lookup({ rule: 'r', idempotencyKey: 'still-pending' })).toMatchObject({
        state: 'pending',
        owner: 'crashed',
      });
      expect((await ledger.begin(input(ref))).claimed).toBe(false);

      expect(await ledger.expire(new Date(Date.now() - 60_000))).toBe(0);
      expect(await ledger.expire(new Date(Date.now() + 60_000))).toBe(2);
      expect(await ledger.lookup(ref)).toBeUndefined();
      await ledger.close();
      ledger = await h.open();
      expect(await ledger.query({})).toEqual([]);
    });
  });
}
