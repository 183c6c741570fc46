import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function geb(...args: string[]) {
  return gebWith({}, ...args);
}

function gebWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
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
    // Each problem on one line (what editors and CI annotations read), the rule named, then a code frame.
    expect(
      stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith(file)),
    ).toEqual([
      `${file}:6:16: rules[0].match.type[0].prefx: unknown key "prefx"; did you mean "prefix"? (the operators are prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr) (rule "shipped")`,
      `${file}:14:33: rules[1].match.total[0].numeric: the lower bound must be below the upper bound (rule "paid")`,
      `${file}:20:15: rules[1].action.agentlessMessage.text: invalid template: undefined filter: money, line:1, col:6 (rule "paid")`,
    ]);
    expect(stderr).toContain(
      ['> 6 |       type: [{ prefx: Order }]', '    |                ^', '  7 |     action:'].join('\n'),
    );
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
    // The rule "broken" cannot render: an error, so a failing exit for CI.
    expect(code).toBe(1);
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
  it("warns where a rule names a field the topic's latest schema lacks (against the run's real registry)", async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { inject } = await import('vitest');
    const { SchemaType } = await import('@kafkajs/confluent-schema-registry');
    const { uniqueName } = await import('../support/kafka.js');
    const { RegistryProducer } = await import('../support/registry-producer.js');
    const registryUrl = inject('schemaRegistryUrl');
    // Topic names of this test's own: the registry is shared by every test file of the run.
    const [orders, payments] = [uniqueName('orders'), uniqueName('payments')];
    await new RegistryProducer(registryUrl).registry.register(
      {
        type: SchemaType.AVRO,
        schema: JSON.stringify({
          type: 'record',
          name: 'Order',
          fields: [
            { name: 'type', type: 'string' },
            { name: 'orderId', type: 'string' },
            { name: 'email', type: 'string' },
          ],
        }),
      },
      { subject: `${orders}-value` },
    );
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: shipped
    topics: [${orders}, ${payments}]
    match: { type: [OrderShipped], region: [eu] }
    action:
      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ email }}" }, subject: "{{ ordrId }}", text: x }
`,
    });
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
        registryUrl,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const lines = stdout.trim().split('\n');
    // Each warning at the place the rules file names the field: file:line:col: warning: …
    const warnings = lines.filter((l) => l.includes('warning: ')).join('\n');
    expect(warnings).toContain(
      `${join(dir, 'rules.yaml')}:5:36: warning: rule "shipped" match: the latest schema`,
    );
    expect(warnings).toMatch(/region/);
    expect(warnings).toMatch(/rules\.yaml:7:\d+: warning: .*ordrId.*; did you mean "orderId"\?/);
    expect(stdout).not.toMatch(/warning: .*"email"/);
    expect(stdout).toContain(`note: no schema for subject ${payments}-value: not checked`);
  });
});

const SECRET = 'the-bridge-own-secret';
const email = (text: string) => `version: 1
rules:
  - name: r
    topics: [t]
    action:
      agentlessEmail:
        from: { email: a@shop.example }
        to: { email: "{{ email }}" }
        text: ${text}
`;
const connection = (lines: string) => `version: 1
connections:
  c:
${lines}
rules:
  - name: r
    topics: [t]
    connection: c
    action:
      agentlessEmail:
        from: { email: a@shop.example }
        to: { email: "{{ email }}" }
        text: hi
`;
const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
  .concat(
    Array.from({ length: 7 }, (_, i) => {
      const [name, prev] = ['bcdefgh'[i] as string, 'abcdefg'[i] as string];
      return `${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`;
    }),
  )
  .concat(['version: 1', 'rules: [*h]'])
  .join('\n');

describe('geb rules check against hostile rules files (issue 15)', () => {
  // Each answers in a few seconds (the test timeout bounds them) with a named error at file:line:column.
  const cases: [name: string, rules: string, expected: RegExp][] = [
    [
      'a template file outside the rules folder',
      email('{ file: ../../../../../../proc/self/environ }'),
      /rules\.yaml:9:\d+: rules\[0\]\.action\.agentlessEmail\.text\.file: template file .* is outside the folders/,
    ],
    [
      'a Liquid include with a path from the event',
      email('"{% include event.path %}"'),
      /rules\.yaml:9:\d+: .*the "include" tag is not available/,
    ],
    [
      'a connection reading the bridge secret',
      connection('    region: mypurecloud.ie\n    clientId: x\n    clientSecret: "${GENESYS_CLIENT_SECRET}"'),
      /rules\.yaml:6:5: connections\.c\.clientSecret: .*start with GEB_RULES_/,
    ],
    [
      'a region whose value would be echoed',
      connection(
        '    region: "${GEB_RULES_HOSTILE}"\n    clientId: x\n    clientSecret: "${GEB_RULES_HOSTILE}"',
      ),
      /rules\.yaml:4:5: connections\.c\.region: the value of \$\{GEB_RULES_HOSTILE\} is not a Genesys Cloud region/,
    ],
    [
      'a connection pointing at another host',
      connection(
        '    apiUrl: https://api.mypurecloud.ie\n    loginUrl: https://collector.example\n    clientId: x\n    clientSecret: "${GEB_RULES_HOSTILE}"',
      ),
      /rules\.yaml:5:5: connections\.c\.loginUrl: must be an https URL of a Genesys Cloud host/,
    ],
    ['a YAML alias bomb', bomb, /rules\.yaml:2:\d+: .*alias bomb/],
    [
      'a pattern nested 10,000 deep',
      email('hi').replace(
        '    action:',
        `    match: ${'{ a: '.repeat(10_000)}[x]${' }'.repeat(10_000)}\n    action:`,
      ),
      /rules\.yaml:5:\d+: .*nested/,
    ],
  ];

  it.each(cases)('refuses %s', async (_name, rules, expected) => {
    const dir = await files({ 'rules.yaml': rules });
    try {
      const { code, stderr } = gebWith(
        { GEB_RULES_HOSTILE: SECRET },
        'rules',
        'check',
        join(dir, 'rules.yaml'),
      );
      expect(stderr).toMatch(expected);
      expect(stderr).not.toContain(SECRET);
      expect(code).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('geb rules test against hostile events (issue 15)', () => {
  it('matches a wildcard against a 540 KB value and stops a loop of 1e9 turns, with a named error', async () => {
    const dir = await files({
      'rules.yaml': `version: 1
rules:
  - name: report
    topics: [t]
    match: { file: [{ wildcard: 'reports/*/monthly-*.csv' }] }
    action:
      agentlessEmail:
        from: { email: a@shop.example }
        to: { email: "{{ email }}" }
        text: "{% for i in (1..n) %}x{% endfor %}"
`,
      'nomatch.json': JSON.stringify({
        file: `reports/${'/monthly-'.repeat(60_000)}x`,
        email: 'a@b.co',
        n: 1,
      }),
      'loop.json': JSON.stringify({ file: 'reports/2026/monthly-11.csv', email: 'a@b.co', n: 1e9 }),
    });
    try {
      const nomatch = geb('rules', 'test', join(dir, 'rules.yaml'), '--event', join(dir, 'nomatch.json'));
      expect(nomatch.code).toBe(0);
      expect(JSON.parse(nomatch.stdout)).toEqual({ matches: [], errors: [] });
      expect(nomatch.stderr).toContain('no rule matched this event');
      const loop = geb('rules', 'test', join(dir, 'rules.yaml'), '--event', join(dir, 'loop.json'));
      expect(loop.code).toBe(1);
      expect(JSON.parse(loop.stdout)).toMatchObject({
        matches: [],
        errors: [{ rule: 'report', code: 'TEMPLATE_LIMIT_EXCEEDED' }],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('geb rules test as a test runner (issue 18)', () => {
  const RULES = `version: 1
rules:
  - name: shipped
    topics: [shop.orders]
    match: { type: [OrderShipped], shipping: { method: [own-fleet] } }
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ customer.email }}", name: "{{ customer.name }}" }
        subject: "Order {{ orderId }}"
        text: "Via {{ carrier }}"
`;

  it("runs the repo's own example cases (examples/tests) and passes", () => {
    const { code, stdout } = geb('rules', 'test', '--cases', 'examples/tests/*.yaml');
    expect(stdout).toMatch(/\d+ case\(s\): \d+ passed, 0 failed/);
    expect(stdout).not.toContain('FAIL');
    expect(code).toBe(0);
  });

  it('fails a broken expectation with the path of the first differing field and a diff', async () => {
    const dir = await files({
      'rules.yaml': RULES,
      'tests/shipped.yaml': `rules: ../rules.yaml
cases:
  - name: sends the email
    event:
      type: OrderShipped
      orderId: A-1
      carrier: DHL
      shipping: { method: own-fleet }
      customer: { email: ada@example.com, name: Ada }
    expect:
      sends:
        - rule: shipped
          requestIncludes:
            body: { subject: Order A-2, textBody: Via DHL }
  - name: expects a send that does not happen
    event: { type: OrderShipped, shipping: { method: carrier } }
    expect:
      sends: [{ rule: shipped }]
  - name: a misspelt key does not quietly check less
    event: { type: Other }
    expect:
      sends: []
      erors: [{ code: DECODE_FAILED }]
`,
    });
    try {
      // The glob as a CI job would write it, relative to the working folder (the repository's, here).
      const run = { ...geb('rules', 'test', '--cases', `${relative(ROOT, dir)}/tests/**/*.yaml`) };
      run.stdout = run.stdout.replaceAll(`${relative(ROOT, dir)}/`, '');
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('FAIL tests/shipped.yaml:3 sends the email');
      expect(run.stdout).toContain('sends[0] (rule shipped): request.body.subject differs');
      expect(run.stdout).toContain('expected: "Order A-2"');
      expect(run.stdout).toContain('actual:   "Order A-1"');
      expect(run.stdout).toMatch(/^ +- +"subject": "Order A-2",$/m);
      expect(run.stdout).toMatch(/^ +\+ +"subject": "Order A-1",$/m);
      // Why nothing was sent: the first field that failed and what the rule expected.
      expect(run.stdout).toContain('FAIL tests/shipped.yaml:15 expects a send that does not happen');
      expect(run.stdout).toContain(
        'shipped: no match: field "shipping.method": the event has "carrier"; the rule expects ["own-fleet"]',
      );
      expect(run.stdout).toContain('FAIL tests/shipped.yaml:19 a misspelt key does not quietly check less');
      expect(run.stdout).toContain('unknown key "expect.erors"; did you mean "errors"?');
      expect(run.stdout).toContain('3 case(s): 0 passed, 3 failed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads examples/events.json ({key, value} records), exits 1 on the missing address, says why nothing matched', () => {
    const { code, stdout, stderr } = geb(
      'rules',
      'test',
      'examples/rules.yaml',
      '--event',
      'examples/events.json',
    );
    expect(code).toBe(1);
    const printed = JSON.parse(stdout) as { event: string; key: string; matches: { rule: string }[] }[];
    expect(printed.map((r) => [r.key, r.matches.map((m) => m.rule)])).toEqual([
      ['order-1001', ['order-shipped-email']],
      ['order-1002', ['order-delayed-email']],
      ['order-1003', []],
      ['order-1004', []],
    ]);
    expect(stderr).toContain('examples/events.json[2]: note: no rule matched this event');
    expect(stderr).toContain(
      'order-shipped-email: no match: field "type": the event has "OrderCancelled"; the rule expects ["OrderShipped"]',
    );
    expect(stderr).toContain(
      // At the template that needs the field: examples/rules.yaml line 12, `to: { email: '{{ customer.email }}' }`.
      'examples/rules.yaml:12:22: error: examples/events.json[3]: order-shipped-email: TEMPLATE_VARIABLE_MISSING: action.agentlessEmail.to.email: the event has no value for "customer.email"',
    );
  });

  it('reports every missing template field of a rule, and --explain says why each rule matched or not', async () => {
    const dir = await files({
      'rules.yaml': RULES,
      'event.json': JSON.stringify({ type: 'OrderShipped', shipping: { method: 'own-fleet' } }),
    });
    try {
      const { code, stdout, stderr } = geb(
        'rules',
        'test',
        join(dir, 'rules.yaml'),
        '--event',
        join(dir, 'event.json'),
        '--explain',
      );
      expect(code).toBe(1);
      expect((JSON.parse(stdout) as { errors: { message: string }[] }).errors.map((e) => e.message)).toEqual([
        'action.agentlessEmail.to.email: the event has no value for "customer"',
        'action.agentlessEmail.subject: the event has no value for "orderId"',
        'action.agentlessEmail.text: the event has no value for "carrier"',
      ]);
      expect(stderr).toContain(
        'shipped: matched, but the event has no value for: customer (action.agentlessEmail.to.email), orderId',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns when no rule reads the given topic, with the nearest one, and fails on a record it cannot decode', async () => {
    const dir = await files({
      'rules.yaml': RULES,
      'event.json': '{"type": "OrderShipped"',
      'ok.json': '{}',
    });
    try {
      const wrong = geb(
        'rules',
        'test',
        join(dir, 'rules.yaml'),
        '--event',
        join(dir, 'ok.json'),
        '--topic',
        'shop.order',
      );
      expect(wrong.stderr).toContain(
        'warning: no rule reads topic "shop.order" (the file\'s topics: shop.orders); did you mean "shop.orders"?',
      );
      const broken = geb('rules', 'test', join(dir, 'rules.yaml'), '--event', join(dir, 'event.json'));
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/^error: \(event\): DECODE_FAILED/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('geb rules check --schema / --samples: template fields checked without a registry (issue 18)', () => {
  const RULES = `version: 1
rules:
  - name: welcome
    topics: [crm.customers]
    match: { kind: [SignedUp] }
    action:
      agentlessEmail:
        from: { email: hello@shop.example }
        to: { email: "{{ user.emial }}", name: "{{ user.name }}" }
        text: "Welcome {{ user.name }}"
`;

  it('reports {{ user.emial }} at file:line:col with the rule and "did you mean user.email", from a JSON Schema', async () => {
    const dir = await files({
      'rules.yaml': RULES,
      'customer.schema.json': JSON.stringify({
        type: 'object',
        properties: {
          kind: { type: 'string' },
          user: { type: 'object', properties: { email: { type: 'string' }, name: { type: 'string' } } },
        },
      }),
    });
    try {
      const file = join(dir, 'rules.yaml');
      const { code, stdout } = geb(
        'rules',
        'check',
        file,
        '--schema',
        `crm.customers=${join(dir, 'customer.schema.json')}`,
      );
      expect(code).toBe(0);
      expect(stdout.trim().split('\n').slice(1)).toEqual([
        `${file}:9:26: warning: rule "welcome" action.agentlessEmail.to.email: the JSON Schema given for crm.customers has no field "user.emial"; did you mean "user.email"?`,
      ]);
      const strict = geb(
        'rules',
        'check',
        file,
        '--schema',
        `crm.customers=${join(dir, 'customer.schema.json')}`,
        '--strict',
      );
      expect(strict.code).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('does the same from sample events ({key, value} records, as examples/events.json)', async () => {
    const dir = await files({
      'rules.yaml': RULES,
      'events.json': JSON.stringify([
        { key: 'c-1', value: { kind: 'SignedUp', user: { email: 'ada@example.com', name: 'Ada' } } },
      ]),
    });
    try {
      const file = join(dir, 'rules.yaml');
      const { code, stdout } = geb('rules', 'check', file, '--samples', join(dir, 'events.json'));
      expect(code).toBe(0);
      expect(stdout).toContain(
        `${file}:9:26: warning: rule "welcome" action.agentlessEmail.to.email: the sample set for crm.customers has no field "user.emial"; did you mean "user.email"?`,
      );
      expect(stdout).not.toMatch(/user\.name"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the case runner parts', () => {
  it('expands a glob relative to the working folder: * and ? within a name, ** for any folders, no hidden files', async () => {
    const { expandGlob } = await import('../../src/commands/rules-cases.js');
    const dir = await files({
      'tests/a.yaml': '',
      'tests/b.yml': '',
      'tests/deep/er/c.yaml': '',
      'tests/.hidden.yaml': '',
      'other/d.yaml': '',
    });
    try {
      const names = (pattern: string) => expandGlob(pattern, dir).map((f) => relative(dir, f));
      expect(names('tests/**/*.yaml')).toEqual(['tests/a.yaml', 'tests/deep/er/c.yaml']);
      expect(names('tests/*.y?ml')).toEqual(['tests/a.yaml']);
      expect(names('tests/*.yml')).toEqual(['tests/b.yml']);
      expect(names('**/d.yaml')).toEqual(['other/d.yaml']);
      expect(names('tests/a.yaml')).toEqual(['tests/a.yaml']);
      expect(names('tests/none/*.yaml')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds the first differing field, ignoring fields not expected only in a partial comparison', async () => {
    const { firstDifference } = await import('../../src/commands/rules-cases.js');
    const actual = { path: '/p', body: { to: [{ email: 'a@b.co', name: 'A' }], subject: 'S' } };
    expect(firstDifference({ body: { subject: 'S' } }, actual, 'request', true)).toBeUndefined();
    expect(firstDifference({ body: { subject: 'S' } }, actual, 'request', false)).toEqual({
      path: 'request.body.to',
      expected: undefined,
      actual: [{ email: 'a@b.co', name: 'A' }],
    });
    // A list must have the length expected; its objects are compared the same way (here: partially).
    expect(firstDifference({ body: { to: [{ email: 'a@b.co' }] } }, actual, 'request', true)).toBeUndefined();
    expect(firstDifference({ body: { to: [] } }, actual, 'request', true)).toEqual({
      path: 'request.body.to[0]',
      expected: undefined,
      actual: { email: 'a@b.co', name: 'A' },
    });
  });
});
