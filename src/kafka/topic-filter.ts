/**
 * A list of topic names and globs (`*` matches any run of characters, e.g. `shop.*`), as PLAIN_JSON_TOPICS takes it.
 * `none` alone matches no topic.
 */
export function topicFilter(patterns: readonly string[]): (topic: string) => boolean {
  if (patterns.length === 1 && patterns[0] === 'none') return () => false;
  const regexes = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`));
  return (topic) => regexes.some((r) => r.test(topic));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
