import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function geb(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function files(entries: Record<string, string>): Promise<string> {
  const dir = await tempDir('geb-rules-cmd-');
  for (const [name, text] of Object.entries(entries)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

describe('geb rules check', () => {
  it('reports three distinct mistakes, each with its line and column, and exits 1', async () => {
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: shipped
    topics: [shop.orders]
    match:
      type: [{ prefx: Order }]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}" }
        text: { file: templates/missing.txt }
  - name: paid
    topics: [shop.orders]
    match: { total: [{ numeric: [">", 100, "<", 10] }] }
    action:
      agentlessMessage:
        messengerType: sms
        from: "+15550000000"
        to: "{{ customer.phone }}"
        text: "Paid {{ total | money }}"
`,
    });
    const file = join(dir, 'rules.yaml');
    const { code, stderr } = geb('rules', 'check', file);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      `${file}:6:16: rules[0].match.type[0].prefx: unknown key "prefx"`,
      `${file}:14:33: rules[1].match.total[0].numeric: the lower bound must be below the upper bound`,
      `${file}:20:15: rules[1].action.agentlessMessage.text: invalid template: undefined filter: money, line:1, col:6`,
    ]);
  });

  it('reports an unreadable template file at its "file" key', async () => {
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: shipped
    topics: [t]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ e }}" }
        html: { file: templates/missing.html }
`,
    });
    const { code, stderr } = geb('rules', 'check', join(dir, 'rules.yaml'));
    expect(code).toBe(1);
    expect(stderr).toContain(':9:23: rules[0].action.agentlessEmail.html.file: cannot read template file');
  });

  it('accepts a valid file, template files included, and exits 0', async () => {
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: shipped
    topics: [t]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ e }}" }
        html: { file: templates/shipped.html }
  - name: off
    topics: [t]
    enabled: false
    action:
      campaignContact: { contactListId: list-1, data: { phone: "{{ p }}" } }
`,
      'templates/shipped.html': '<p>{{ name }}</p>',
    });
    const { code, stdout } = geb('rules', 'check', join(dir, 'rules.yaml'));
    expect(code).toBe(0);
    expect(stdout).toContain('ok (1 rule(s)');
  });
});

describe('geb rules test', () => {
  it('prints the request of every matching rule and the errors of the others, with key and header matching', async () => {
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: by-key
    topics: [t]
    match: { $kafka: { key: [{ prefix: "vip-" }], headers: { source: [shop] } } }
    action:
      agentlessMessage: { messengerType: open, from: integration-1, to: "{{ userId }}", text: "Hi {{ name }}" }
  - name: contact
    topics: [t]
    action:
      campaignContact: { contactListId: "{{ list }}", data: { name: "{{ name }}" }, doNotQueue: true }
  - name: broken
    topics: [t]
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ email }}" }, text: x }
`,
      'event.json': JSON.stringify({ userId: 'u-1', name: 'Ada', list: 'list-1' }),
    });
    const { code, stdout } = geb(
      'rules',
      'test',
      join(dir, 'rules.yaml'),
      '--event',
      join(dir, 'event.json'),
      '--key',
      'vip-7',
      '--header',
      'source=shop',
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      matches: [
        {
          rule: 'by-key',
          request: {
            method: 'POST',
            path: '/api/v2/conversations/messages/agentless',
            body: {
              fromAddress: 'integration-1',
              toAddress: 'u-1',
              toAddressMessengerType: 'open',
              textBody: 'Hi Ada',
            },
          },
        },
        {
          rule: 'contact',
          request: {
            method: 'POST',
            path: '/api/v2/outbound/contactlists/list-1/contacts?doNotQueue=true',
            body: [{ contactListId: 'list-1', data: { name: 'Ada' } }],
          },
        },
      ],
      errors: [
        {
          rule: 'broken',
          code: 'TEMPLATE_VARIABLE_MISSING',
          message: 'action.agentlessEmail.to.email: the event has no value for "email"',
        },
      ],
    });
  });
});

describe('geb rules check --registry', () => {
  it("warns where a rule names a field the topic's latest schema lacks", async () => {
    const { FakeSchemaRegistry } = await import('../support/schema-registry.js');
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const registry = await FakeSchemaRegistry.start();
    try {
      registry.registerDirect(
        'orders-value',
        'AVRO',
        JSON.stringify({
          type: 'record',
          name: 'Order',
          fields: [
            { name: 'type', type: 'string' },
            { name: 'orderId', type: 'string' },
            { name: 'email', type: 'string' },
          ],
        }),
      );
      const dir = await files({
        'rules.yaml': `version: 1
rules:
  - name: shipped
    topics: [orders, payments]
    match: { type: [OrderShipped], region: [eu] }
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ email }}" }, subject: "{{ ordrId }}", text: x }
`,
      });
      // Not spawnSync: the fake registry answers from this process's event loop.
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src', 'cli.ts'),
          'rules',
          'check',
          join(dir, 'rules.yaml'),
          '--registry',
          registry.url,
        ],
        { cwd: ROOT, encoding: 'utf8' },
      );
      const lines = stdout.trim().split('\n');
      expect(lines.filter((l) => l.startsWith('warning: ')).join('\n')).toMatch(/region/);
      expect(lines.filter((l) => l.startsWith('warning: ')).join('\n')).toMatch(/ordrId/);
      expect(stdout).not.toMatch(/warning: .*"email"/);
      expect(stdout).toContain('note: no schema for subject payments-value: not checked');
    } finally {
      await registry.close();
    }
  });
});
