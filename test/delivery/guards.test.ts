import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Guards } from '../../src/delivery/guards.js';
import { openSuppressions } from '../../src/delivery/suppressions.js';
import type { InboundMessage } from '../../src/kafka/message.js';
import { loadRulesFile } from '../../src/rules/rules-file.js';

const rulesYaml = (maxEventAge: string) => `
version: 1
rules:
  - name: shipped
    topics: [orders]
    maxEventAge: ${maxEventAge}
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        subject: Shipped
        text: Shipped
`;

const message = (timestamp: number): InboundMessage => ({
  topic: 'orders',
  partition: 0,
  offset: '1',
  key: null,
  value: null,
  headers: {},
  timestamp: String(timestamp),
});

describe('delivery guards', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'geb-guards-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const writeRulesFile = (yaml: string) => {
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, yaml);
    return Promise.resolve(file);
  };

  it("skips an event older than the rule's maxEventAge (by its Kafka timestamp) as expired", async () => {
    const rules = await loadRulesFile(await writeRulesFile(rulesYaml('90m')));
    const rule = rules.rules[0];
    expect(rule?.maxEventAgeMs).toBe(90 * 60_000);
    const now = Date.parse('2026-01-01T12:00:00Z');
    const guards = new Guards(undefined, () => now);
    expect(await guards.check(rule!, message(now - 89 * 60_000), 'h')).toBeUndefined();
    expect(await guards.check(rule!, message(now - 91 * 60_000), 'h')).toMatchObject({
      state: 'expired',
      reason: expect.stringContaining('older than the rule') as string,
    });
  });

  it('refuses a maxEventAge that is not a number and a unit', async () => {
    await expect(loadRulesFile(await writeRulesFile(rulesYaml('"1 hour"')))).rejects.toThrow(/maxEventAge/);
  });

  it('skips a suppressed recipient, and sends again once the suppression is lifted', async () => {
    const rules = await loadRulesFile(await writeRulesFile(rulesYaml('1d')));
    const store = await openSuppressions(join(dir, 'ledger.jsonl'));
    await store.add({
      recipientHash: 'abc123',
      reason: 'bounced (email.delivery.failed)',
      createdAt: new Date().toISOString(),
      until: new Date(Date.now() + 60_000).toISOString(),
    });
    const guards = new Guards(store);
    expect(await guards.check(rules.rules[0]!, message(Date.now()), 'abc123')).toMatchObject({
      state: 'suppressed',
    });
    expect(await guards.check(rules.rules[0]!, message(Date.now()), 'other')).toBeUndefined();
    await store.remove('abc123');
    expect(await guards.check(rules.rules[0]!, message(Date.now()), 'abc123')).toBeUndefined();
  });
});
