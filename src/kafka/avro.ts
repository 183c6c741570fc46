import avro from 'avsc';

/**
 * Avro logical types as rules see them (docs/decoding.md): JSON-friendly values that templates print and patterns
 * compare as they are, instead of epoch numbers and raw bytes.
 */

const DAY_MS = 86_400_000;

/** timestamp-millis / timestamp-micros: an ISO-8601 UTC string with milliseconds, `2026-11-24T15:04:05.123Z`. */
class TimestampMillis extends avro.types.LogicalType {
  protected override _fromValue(value: number): string {
    return new Date(value).toISOString();
  }
  protected override _toValue(value: unknown): number | undefined {
    const ms = toEpochMs(value);
    return ms === undefined ? undefined : ms;
  }
}

class TimestampMicros extends avro.types.LogicalType {
  protected override _fromValue(value: number): string {
    return new Date(Math.floor(value / 1000)).toISOString();
  }
  protected override _toValue(value: unknown): number | undefined {
    const ms = toEpochMs(value);
    return ms === undefined ? undefined : ms * 1000;
  }
}

/** date: days since the epoch as `YYYY-MM-DD`. */
class DateType extends avro.types.LogicalType {
  protected override _fromValue(value: number): string {
    return new Date(value * DAY_MS).toISOString().slice(0, 10);
  }
  protected override _toValue(value: unknown): number | undefined {
    if (typeof value !== 'string' && !(value instanceof Date)) return undefined;
    const ms = new Date(value).getTime();
    return Number.isNaN(ms) ? undefined : Math.floor(ms / DAY_MS);
  }
}

/** time-millis: milliseconds after midnight as `HH:MM:SS.sss`. */
class TimeMillis extends avro.types.LogicalType {
  protected override _fromValue(value: number): string {
    return new Date(value).toISOString().slice(11, 23);
  }
  protected override _toValue(value: unknown): number | undefined {
    if (typeof value !== 'string') return undefined;
    const ms = new Date(`1970-01-01T${value}Z`).getTime();
    return Number.isNaN(ms) ? undefined : ms;
  }
}

/**
 * decimal (bytes or fixed): the exact value as a string, `"1234.50"`, keeping the schema's scale. A string because a
 * JavaScript number cannot hold every decimal exactly; Liquid's number filters still accept it.
 */
class DecimalType extends avro.types.LogicalType {
  readonly #scale: number;
  readonly #size: number | undefined;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const s = schema as { scale?: number; size?: number };
    this.#scale = s.scale ?? 0;
    this.#size = s.size;
  }

  protected override _fromValue(value: Buffer): string {
    let unscaled = 0n;
    for (const byte of value) unscaled = (unscaled << 8n) | BigInt(byte);
    // Two's complement, big-endian, as the Avro specification has it.
    if (value.length > 0 && (value[0] ?? 0) & 0x80) unscaled -= 1n << BigInt(value.length * 8);
    const negative = unscaled < 0n;
    const digits = (negative ? -unscaled : unscaled).toString().padStart(this.#scale + 1, '0');
    const whole = digits.slice(0, digits.length - this.#scale);
    const fraction = this.#scale > 0 ? `.${digits.slice(digits.length - this.#scale)}` : '';
    return `${negative ? '-' : ''}${whole}${fraction}`;
  }

  protected override _toValue(value: unknown): Buffer | undefined {
    if (typeof value !== 'string' && typeof value !== 'number') return undefined;
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(value));
    if (!match) return undefined;
    const fraction = (match[3] ?? '').padEnd(this.#scale, '0');
    if (fraction.length > this.#scale) return undefined;
    let unscaled = BigInt(`${match[2]}${fraction}`);
    if (match[1] === '-') unscaled = -unscaled;
    let bytes = 1;
    while (unscaled >= 1n << BigInt(bytes * 8 - 1) || unscaled < -(1n << BigInt(bytes * 8 - 1))) bytes++;
    const size = this.#size ?? bytes;
    const buffer = Buffer.alloc(size);
    let rest = BigInt.asUintN(size * 8, unscaled);
    for (let i = size - 1; i >= 0; i--) {
      buffer[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
    return buffer;
  }
}

/** uuid: already a string on the wire; kept as it is. */
class UuidType extends avro.types.LogicalType {
  protected override _fromValue(value: string): string {
    return value;
  }
  protected override _toValue(value: unknown): string | undefined {
    return typeof value === 'string' ? value : undefined;
  }
}

export const LOGICAL_TYPES = {
  'timestamp-millis': TimestampMillis,
  'timestamp-micros': TimestampMicros,
  date: DateType,
  'time-millis': TimeMillis,
  decimal: DecimalType,
  uuid: UuidType,
} as const;

function toEpochMs(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const ms = new Date(value).getTime();
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** Compiles a writer schema (and the named types its references define) into a reader of Avro binary. */
export function avroReader(schema: string, referenced: readonly string[]): avro.Type {
  const registry: Record<string, avro.Type> = {};
  const opts = { logicalTypes: LOGICAL_TYPES, registry } as unknown as Partial<avro.ForSchemaOptions>;
  for (const ref of referenced) avro.Type.forSchema(JSON.parse(ref) as avro.Schema, opts);
  return avro.Type.forSchema(JSON.parse(schema) as avro.Schema, opts);
}
