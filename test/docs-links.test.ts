import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Markdown link targets of `text` (inline links and reference definitions), outside code blocks and code spans. */
export function linkTargets(text: string): string[] {
  const prose = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
  const inline = [...prose.matchAll(/\]\(\s*(?:<([^>\n]+)>|([^)\s]+))(?:\s+"[^"]*")?\s*\)/g)].map(
    (m) => m[1] ?? m[2] ?? '',
  );
  const references = [...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1] ?? '');
  return [...inline, ...references];
}

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs')))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', ...docs];
}

describe('links in README.md and docs/', () => {
  it('finds inline and reference links but not those in code', () => {
    expect(
      linkTargets('[a](x.md) [b](<y z.md> "t")\n[c]: ref.md\n`[d](no.md)`\n```\n[e](no2.md)\n```\n'),
    ).toEqual(['x.md', 'y z.md', 'ref.md']);
  });

  it('every relative link resolves to a file of the repository', async () => {
    const broken: string[] = [];
    for (const file of await markdownFiles()) {
      const text = await readFile(join(ROOT, file), 'utf8');
      for (const target of linkTargets(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
        const path = decodeURIComponent(target.split('#')[0] ?? '');
        const resolved = resolve(ROOT, dirname(file), path);
        if (!existsSync(resolved)) broken.push(`${file}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README stays short', async () => {
    expect((await readFile(join(ROOT, 'README.md'))).length).toBeLessThanOrEqual(12 * 1024);
  });
});
