/**
 * The events `geb rules test` takes: one event (its bytes as the record value), a file of events (a JSON array or
 * one JSON document a line), or records in the `{key, value, headers}` envelope that examples/events.json uses.
 */

export interface TestRecord {
  /** Names the record in messages: `events.json[2]`. */
  readonly label: string;
  readonly value: Buffer | null;
  readonly key?: string;
  readonly topic?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
}

const ENVELOPE_KEYS = new Set(['key', 'value', 'headers', 'topic']);

/**
 * An object is taken for an envelope when it has `value` and no key but `key`, `value`, `headers`, `topic`. (An event
 * of exactly that shape would be read as an envelope: wrap it in one, `{"value": …}`, to test it.)
 */
export function isEnvelope(item: unknown): item is Record<string, unknown> {
  return (
    typeof item === 'object' &&
    item !== null &&
    !Array.isArray(item) &&
    'value' in item &&
    Object.keys(item).every((k) => ENVELOPE_KEYS.has(k))
  );
}

/** The records of a file's bytes; `label` names the file. Throws an Error whose message says what is wrong. */
export function recordsOf(bytes: Buffer, label: string): TestRecord[] {
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const each = lines.length > 1 ? lines.map(tryJson) : [];
    if (each.length > 1 && each.every((v) => v !== undefined)) {
      return each.map((item, i) => recordOf(item, `${label}:${i + 1}`, undefined));
    }
    // Not JSON: the bytes go to the decoder as they are, which says why it cannot read them (DECODE_FAILED).
    return [{ label, value: bytes }];
  }
  if (Array.isArray(parsed)) return parsed.map((item, i) => recordOf(item, `${label}[${i}]`, undefined));
  return [recordOf(parsed, label, bytes)];
}

/** One record: an envelope, or an event whose JSON is the value (its own bytes when it came alone in a file). */
export function recordOf(item: unknown, label: string, bytes: Buffer | undefined): TestRecord {
  if (!isEnvelope(item)) return { label, value: bytes ?? Buffer.from(JSON.stringify(item)) };
  const { key, value, headers, topic } = item;
  if (key !== undefined && key !== null && typeof key !== 'string')
    throw new Error(`${label}: "key" must be a string`);
  if (topic !== undefined && typeof topic !== 'string') throw new Error(`${label}: "topic" must be a string`);
  const checkedHeaders: Record<string, string | string[]> = {};
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object' || Array.isArray(headers))
      throw new Error(`${label}: "headers" must be an object of name: value`);
    for (const [name, v] of Object.entries(headers)) {
      if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))
        checkedHeaders[name] = v;
      else throw new Error(`${label}: header "${name}" must be a string or a list of strings`);
    }
  }
  return {
    label,
    // A string value is the record's bytes as written (to test what the decoder makes of them); null a tombstone.
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    ...(typeof key === 'string' && { key }),
    ...(topic !== undefined && { topic }),
    headers: checkedHeaders,
  };
}

function tryJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}
