import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RulesFileError, loadRulesFile } from '../../src/rules/rules-file.js';
import { templateScope } from '../../src/rules/template.js';

const SECRET = 'secret-outside-the-rules-folder';

const rulesWith = (body: string) => `version: 1
rules:
  - name: receipt
    topics: [shop.orders]
    action:
      agentlessEmail:
        from: { email: orders@shop.example }
        to: { email: "{{ email }}" }
        text: ${body}
`;

describe('template files resolve inside the rules folder or RULES_TEMPLATES_DIR only', () => {
  let root: string;
  let rulesDir: string;
  let shared: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'geb-template-files-'));
    rulesDir = join(root, 'rules');
    shared = join(root, 'shared');
    mkdirSync(join(rulesDir, 'templates'), { recursive: true });
    mkdirSync(shared);
    writeFileSync(join(rulesDir, 'templates', 'receipt.txt'), 'Thanks, {{ email }}');
    writeFileSync(join(shared, 'footer.txt'), 'Shared footer');
    writeFileSync(join(root, 'secret.txt'), SECRET);
    symlinkSync(join(root, 'secret.txt'), join(rulesDir, 'templates', 'link-out.txt'));
    symlinkSync(join(rulesDir, 'templates', 'receipt.txt'), join(rulesDir, 'link-in.txt'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  async function load(body: string, env: NodeJS.ProcessEnv = {}) {
    const file = join(rulesDir, 'rules.yaml');
    writeFileSync(file, rulesWith(body));
    return loadRulesFile(file, env);
  }

  async function refusal(body: string, env: NodeJS.ProcessEnv = {}): Promise<RulesFileError> {
    try {
      await load(body, env);
    } catch (error) {
      expect(error).toBeInstanceOf(RulesFileError);
      return error as RulesFileError;
    }
    throw new Error('expected the rules file to be refused');
  }

  it('reads a file inside the rules folder, and a link that stays inside', async () => {
    for (const body of ['{ file: templates/receipt.txt }', '{ file: link-in.txt }']) {
      const rules = await load(body);
      const rendered = rules.rules[0]?.action.render(templateScope({ email: 'ada@example.com' }));
      expect(rendered).toMatchObject({ text: 'Thanks, ada@example.com' });
    }
  });

  it.each([
    ['a relative path that climbs out', '{ file: ../secret.txt }'],
    ['/proc/self/environ', '{ file: ../../../../../../../../proc/self/environ }'],
    ['an absolute path', `{ file: "${'/etc/hostname'}" }`],
    ['a symbolic link that points out', '{ file: templates/link-out.txt }'],
    ['a folder the operator did not name', '{ file: ../shared/footer.txt }'],
  ])('refuses %s with the position of the file key', async (_name, body) => {
    const error = await refusal(body);
    expect(error.code).toBe('RULES_INVALID');
    expect(error.problems).toEqual([
      expect.objectContaining({
        path: 'rules[0].action.agentlessEmail.text.file',
        line: 9,
      }),
    ]);
    expect(error.problems[0]?.message).toMatch(
      /is outside the folders template files may be read from.*refused/,
    );
    expect(error.message).toMatch(/rules\.yaml:9:\d+: /);
    expect(error.message).not.toContain(SECRET);
  });

  it('reads from RULES_TEMPLATES_DIR when the operator names it', async () => {
    const env = { RULES_TEMPLATES_DIR: shared };
    const rules = await load('{ file: ../shared/footer.txt }', env);
    expect(rules.rules[0]?.action.render(templateScope({ email: 'ada@example.com' }))).toMatchObject({
      text: 'Shared footer',
    });
    expect((await refusal('{ file: ../secret.txt }', env)).problems[0]?.message).toContain(
      'RULES_TEMPLATES_DIR',
    );
  });

  it('refuses Liquid file tags in a template file, even with the path from the event', async () => {
    writeFileSync(join(rulesDir, 'templates', 'tags.txt'), 'Hi {% include path %}');
    const error = await refusal('{ file: templates/tags.txt }');
    expect(error.problems[0]?.message).toContain('"include" tag is not available');
  });
});
