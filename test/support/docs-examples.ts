import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RULES_DOC = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'),
  'docs',
  'rules.md',
);

/**
 * One tested example of docs/rules.md: a ```yaml example block (a whole rules file), the ```json event block after it
 * (its info string may add `key=K` and `header:name=value`), files declared before it (```html file=path) and the
 * ```json output block showing what `geb rules test` prints.
 */
export interface DocExample {
  readonly line: number;
  readonly rules: string;
  readonly files: Record<string, string>;
  event?: string;
  key?: string;
  headers: Record<string, string>;
  output?: string;
  /** Offset in the document just after the event block, where its output block goes. */
  eventEnd?: number;
  outputRange?: [number, number];
}

export function readDocExamples(text = readFileSync(RULES_DOC, 'utf8')): DocExample[] {
  const examples: DocExample[] = [];
  let files: Record<string, string> = {};
  const fence = /^```(\S*)([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const block of text.matchAll(fence)) {
    const [whole, lang, info = '', body = ''] = block;
    const words = info.trim().split(/\s+/).filter(Boolean);
    const start = block.index;
    const end = start + whole.length;
    const file = words.find((w) => w.startsWith('file='));
    const last = examples.at(-1);
    if (lang === 'yaml' && words[0] === 'example') {
      examples.push({ line: text.slice(0, start).split('\n').length, rules: body, files, headers: {} });
      files = {};
    } else if (file) {
      files[file.slice('file='.length)] = body;
    } else if (lang === 'json' && words[0] === 'event' && last) {
      last.event = body;
      last.eventEnd = end;
      for (const word of words.slice(1)) {
        if (word.startsWith('key=')) last.key = word.slice(4);
        const header = /^header:([^=]+)=(.*)$/.exec(word);
        if (header) last.headers[header[1] as string] = header[2] as string;
      }
    } else if (lang === 'json' && words[0] === 'output' && last) {
      last.output = body;
      last.outputRange = [start, end];
    }
  }
  return examples;
}
