import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRulesFile } from '../../src/rules/rules-file.js';
import { RulesReloader } from '../../src/rules/rules-reloader.js';
import { templateScope } from '../../src/rules/template.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';
import { waitFor } from '../support/kafka.js';
import { tempDir } from '../support/temp.js';

const RULES = `version: 1
rules:
  - name: shipped
    topics: [t]
    action:
      agentlessEmail:
        from: { email: a@b.co }
        to: { email: a@b.co }
        html: { file: templates/shipped.html }
`;

let reloader: RulesReloader | undefined;
afterEach(() => reloader?.stop());

async function setUp(watchIntervalMs: number) {
  const dir = await tempDir('geb-reload-');
  await mkdir(join(dir, 'templates'));
  await writeFile(join(dir, 'templates', 'shipped.html'), '<p>one {{ n }}</p>');
  const file = join(dir, 'rules.yaml');
  await writeFile(file, RULES);
  const logs = new LogCapture();
  reloader = new RulesReloader({
    file,
    initial: await loadRulesFile(file),
    logger: createLogger('info', logs),
    watchIntervalMs,
    subscribedTopics: ['t'],
  });
  reloader.start();
  const html = () => {
    const [rule] = (reloader as RulesReloader).current.match('t', {});
    return (rule?.action.render(templateScope({ n: 1 })) as { html: string }).html;
  };
  return { dir, file, logs, html, reloader };
}

describe('RulesReloader', () => {
  it('refuses a reload that reaches outside what the operator grants, keeps the old rules and logs where', async () => {
    const { dir, file, logs, html, reloader: r } = await setUp(0);
    try {
      // The template file becomes a link to a file outside the rules folder.
      await writeFile(join(dir, '..', `${dir.split('/').pop() ?? ''}-outside.txt`), 'outside secret');
      await rm(join(dir, 'templates', 'shipped.html'));
      await symlink(
        join(dir, '..', `${dir.split('/').pop() ?? ''}-outside.txt`),
        join(dir, 'templates', 'shipped.html'),
      );
      expect(await r.reload('test')).toBe(false);
      expect(logs.text).toContain(`${file}:9:23: rules[0].action.agentlessEmail.html.file`);
      expect(logs.text).toContain('is outside the folders template files may be read from');
      // A connection that names the bridge's own secret.
      await writeFile(
        file,
        RULES.replace(
          'rules:',
          'connections:\n  c:\n    region: mypurecloud.ie\n    clientId: x\n    clientSecret: "${GENESYS_CLIENT_SECRET}"\nrules:',
        ).replace('        html: { file: templates/shipped.html }', '        text: "hi"'),
      );
      expect(await r.reload('test')).toBe(false);
      expect(logs.text).toContain('start with GEB_RULES_');
      expect(html()).toBe('<p>one 1</p>');
      expect(r.counts).toEqual({ succeeded: 0, failed: 2 });
    } finally {
      await rm(join(dir, '..', `${dir.split('/').pop() ?? ''}-outside.txt`), { force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reloads when a template file changes', async () => {
    const { dir, html } = await setUp(20);
    expect(html()).toBe('<p>one 1</p>');
    await writeFile(join(dir, 'templates', 'tmp.html'), '<p>two {{ n }}</p>');
    await rename(join(dir, 'templates', 'tmp.html'), join(dir, 'templates', 'shipped.html'));
    await waitFor(() => html() === '<p>two 1</p>', { what: 'the new template' });
  });

  it('keeps the old rules when asked to reload an invalid file, and counts both outcomes', async () => {
    const { file, logs, html, reloader: r } = await setUp(0);
    await writeFile(file, RULES.replace('html:', 'htm:'));
    expect(await r.reload('test')).toBe(false);
    expect(html()).toBe('<p>one 1</p>');
    expect(logs.text).toContain('unknown key \\"htm\\"');
    await writeFile(file, RULES.replace('name: shipped', 'name: renamed'));
    expect(await r.reload('test')).toBe(true);
    expect(r.current.rules.map((rule) => rule.name)).toEqual(['renamed']);
    expect(r.counts).toEqual({ succeeded: 1, failed: 1 });
  });

  it('warns that rules for a topic not consumed yet wait for a restart', async () => {
    const { file, logs, reloader: r } = await setUp(0);
    await writeFile(file, RULES.replace('topics: [t]', 'topics: [t, other]'));
    expect(await r.reload('test')).toBe(true);
    expect(logs.text).toContain('take effect after a restart');
  });
});
