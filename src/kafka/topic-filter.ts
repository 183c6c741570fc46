/**
 * A list of topic names and globs (`*` matches any run of characters, e.g. `shop.*`), as PLAIN_JSON_TOPICS takes it.
 * `none` alone matches no topic.
 */
export function topicFilter(patterns: readonly string[]): (topic: string) => boolean {
  if (patterns.length === 1 && patterns[0] === 'none') return () => false;
  const regexes = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`));
  // Asked for every record: the answer per topic is kept (a consumer reads a bounded set of topics; the bound keeps a
  // caller that asks about arbitrary names from growing it).
  const known = new Map<string, boolean>();
  return (topic) => {
    let matches = known.get(topic);
    if (matches === undefined) {
      matches = regexes.some((r) => r.test(topic));
      if (known.size < MAX_REMEMBERED) known.set(topic, matches);
    }
    return matches;
  };
}

const MAX_REMEMBERED = 10_000;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
