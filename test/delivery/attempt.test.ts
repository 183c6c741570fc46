import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ShutdownError } from '../../src/errors.js';
import { DeliveryAttempts, type Delivery } from '../../src/delivery/attempt.js';
import { FileLedger } from '../../src/delivery/ledger/file-ledger.js';
import { DeliveryGate } from '../../src/delivery/ledger/gate.js';
import { Health } from '../../src/health.js';
import { plan } from '../../src/pipeline.js';
import { createLogger, recipientHasher } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';
import {
  FAST_RETRIES,
  FakeDeadLetters,
  FakeSender,
  refused,
  signup,
  welcomeRules,
  type SendStep,
} from '../support/pipeline-fakes.js';
import { tempDir } from '../support/temp.js';

describe('DeliveryAttempts: one delivery (claim, call, retry, record) over a fake sender and an embedded ledger', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function setUp(script: readonly SendStep[], backoffMs: number) {
    const dir = await tempDir('geb-attempt-');
    const ledger = FileLedger.open(join(dir, 'ledger.jsonl'));
    cleanups.push(async () => {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    });
    const gate = new DeliveryGate(ledger, undefined);
    const rules = welcomeRules();
    const attempts = new DeliveryAttempts({
      genesys: new FakeSender(script),
      deadLetters: new FakeDeadLetters(),
      health: new Health(),
      retryPolicy: { ...FAST_RETRIES, baseDelayMs: backoffMs, maxDelayMs: backoffMs },
      recipientHash: recipientHasher(undefined),
      ledger: gate,
      rules: () => rules,
    });
    const stop = new AbortController();
    const rule = rules.rules[0]!;
    const message = signup(1);
    const delivery: Delivery = {
      message,
      rule,
      log: createLogger('debug', new LogCapture()),
      ctx: { waitSignal: stop.signal, callSignal: stop.signal, heartbeat: () => Promise.resolve() },
      keys: { replay: undefined, keys: () => ({}) },
    };
    const ref = attempts.ref(message, rule.name, undefined);
    const { rendered, request } = plan.render(rule, {
      type: 'Signup',
      email: 'ann@example.com',
      name: 'Ann',
    });
    const run = () => attempts.attempt(delivery, undefined, ref, rendered, request);
    return { gate, ref: ref!, stop, run };
  }

  it('records a send with its conversation id and the attempts it took', async () => {
    const { gate, ref, run } = await setUp([refused('GENESYS_UNAVAILABLE', 503), 'ok'], 1);
    expect(await run()).toBe('sent');
    expect(await gate.lookup(ref)).toMatchObject({ state: 'sent', genesysId: 'conv-2', attempts: 2 });
  });

  it('forgets its claim when stopped during a backoff after a call that certainly did not reach Genesys', async () => {
    const { gate, ref, stop, run } = await setUp([refused('GENESYS_RATE_LIMITED', 429)], 60_000);
    setTimeout(() => stop.abort(), 50);
    await expect(run()).rejects.toBeInstanceOf(ShutdownError);
    // Released: the next run sends it rather than calling it in doubt.
    expect(await gate.lookup(ref)).toBeUndefined();
  });

  it('keeps its claim pending when stopped after a call that may have reached Genesys (a 503)', async () => {
    const { gate, ref, stop, run } = await setUp([refused('GENESYS_UNAVAILABLE', 503)], 60_000);
    setTimeout(() => stop.abort(), 50);
    await expect(run()).rejects.toBeInstanceOf(ShutdownError);
    expect(await gate.lookup(ref)).toMatchObject({ state: 'pending' });
  });
});
