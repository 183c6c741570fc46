import {
  DELIVERY_STATES,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryState,
  type Ledger,
} from './ledger.js';

/**
 * The delivery history as the CLI (`geb deliveries show`) and the admin HTTP server (`GET /deliveries`) both serve
 * it: the same parameters, the same JSON.
 */

export interface HistoryParams {
  /** TOPIC/PARTITION/OFFSET */
  readonly event?: string | undefined;
  /** The Kafka message key or the idempotency key. */
  readonly key?: string | undefined;
  readonly rule?: string | undefined;
  /** The recipient's hash, as logged and recorded (never the address: `geb deliveries --recipient` hashes it). */
  readonly recipientHash?: string | undefined;
  readonly state?: string | undefined;
  /** A duration back from now (`90s`, `15m`, `1h`, `7d`) or an ISO-8601 time. */
  readonly since?: string | undefined;
  readonly limit?: string | undefined;
}

export class HistoryQueryError extends Error {}

export function parseHistoryParams(params: HistoryParams, now = Date.now()): DeliveryQuery {
  const query: {
    -readonly [K in keyof DeliveryQuery]: DeliveryQuery[K];
  } = {};
  if (
    params.event === undefined &&
    params.key === undefined &&
    params.rule === undefined &&
    params.recipientHash === undefined
  ) {
    throw new HistoryQueryError(
      'name what to look for: event (TOPIC/PARTITION/OFFSET), key, rule or recipient (recipientHash)',
    );
  }
  if (params.event !== undefined) {
    const match = /^(.+)\/(\d+)\/(\d+)$/.exec(params.event);
    if (!match) throw new HistoryQueryError(`event "${params.event}" is not TOPIC/PARTITION/OFFSET`);
    query.topic = match[1];
    query.partition = Number(match[2]);
    query.offset = String(Number(match[3]));
  }
  if (params.key !== undefined) query.key = params.key;
  if (params.rule !== undefined) query.rule = params.rule;
  if (params.recipientHash !== undefined) {
    if (!/^[0-9a-f]{16}$/.test(params.recipientHash)) {
      throw new HistoryQueryError('recipientHash must be 16 hexadecimal digits, as logged');
    }
    query.recipientHash = params.recipientHash;
  }
  if (params.state !== undefined) {
    if (!(DELIVERY_STATES as readonly string[]).includes(params.state)) {
      throw new HistoryQueryError(`state "${params.state}" is not one of ${DELIVERY_STATES.join(', ')}`);
    }
    query.state = params.state as DeliveryState;
  }
  if (params.since !== undefined) query.since = parseSince(params.since, now);
  if (params.limit !== undefined) {
    const limit = Number(params.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new HistoryQueryError(`limit "${params.limit}" must be a whole number from 1 to 10000`);
    }
    query.limit = limit;
  }
  return query;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseSince(since: string, now: number): Date {
  const duration = /^(\d+)([smhd])$/.exec(since.trim());
  if (duration) return new Date(now - Number(duration[1]) * (UNIT_MS[duration[2] ?? 's'] ?? 1_000));
  const time = Date.parse(since);
  if (Number.isNaN(time)) {
    throw new HistoryQueryError(
      `since "${since}" is neither a duration (90s, 15m, 1h, 7d) nor an ISO-8601 time`,
    );
  }
  return new Date(time);
}

export interface HistoryResponse {
  readonly status: number;
  readonly body: { deliveries: DeliveryView[] } | { error: string };
}

/** One record as users see it: the owner (a process id) is left out; the rest is free of personal data. */
export type DeliveryView = Omit<DeliveryRecord, 'owner'> & { readonly event: string };

export function viewOf(record: DeliveryRecord): DeliveryView {
  const { owner: _owner, ...rest } = record;
  return { event: `${record.topic}/${record.partition}/${record.offset}`, ...rest };
}

export async function queryHistory(ledger: Ledger, params: HistoryParams): Promise<HistoryResponse> {
  let query;
  try {
    query = parseHistoryParams(params);
  } catch (error) {
    if (error instanceof HistoryQueryError) return { status: 400, body: { error: error.message } };
    throw error;
  }
  const records = await ledger.query(query);
  return { status: 200, body: { deliveries: records.map(viewOf) } };
}

/**
 * For the admin HTTP server: `GET /deliveries?event=T/P/O|key=K|rule=R|recipientHash=H[&since=1h][&state=sent][&limit=N]`
 * answers `{ deliveries: [...] }` (200) or `{ error }` (400).
 */
export function deliveriesHandler(ledger: Ledger): (url: URL) => Promise<HistoryResponse> {
  return (url) => {
    const get = (name: string) => url.searchParams.get(name) ?? undefined;
    return queryHistory(ledger, {
      event: get('event'),
      key: get('key'),
      rule: get('rule'),
      recipientHash: get('recipientHash'),
      state: get('state'),
      since: get('since'),
      limit: get('limit'),
    });
  };
}

/** The human form of `geb deliveries show`: one block per delivery, what an SRE needs first. */
export function formatDeliveries(views: readonly DeliveryView[]): string {
  return views
    .map((v) => {
      const lines = [`${v.event}  rule ${v.rule}  ${v.state.toUpperCase()}  at ${v.updatedAt}`];
      const field = (label: string, value: string | number | null | undefined) => {
        if (value !== undefined && value !== null && value !== '')
          lines.push(`  ${label.padEnd(16)}${value}`);
      };
      field('conversationId', v.genesysId);
      field('correlationId', v.correlationId);
      field('traceId', v.traceId ?? '-');
      field('reason', v.errorCode !== undefined ? `${v.errorCode}: ${v.reason ?? ''}` : v.reason);
      field('idempotencyKey', v.idempotencyKey);
      field('key', v.key);
      field('recipientHash', v.recipientHash);
      field('attempts', v.attempts);
      if (v.skipped > 0) field('duplicates', `${v.skipped} redelivery(ies) skipped`);
      field('first seen', v.createdAt);
      return lines.join('\n');
    })
    .join('\n\n');
}
