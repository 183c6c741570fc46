import { createHash } from 'node:crypto';
import type { Models } from 'purecloud-platform-client-v2';
import type { FaultSettings } from './faults.js';

/**
 * What the simulator remembers of each accepted agentless email and message, so that it can answer "what became of
 * it" as Genesys does (GENESYS.md, "What became of a send"): the email conversation with its participants' state and
 * errorInfo, the analytics details (multi-get and query) with the sessions' deliveryStatus, and a message's status.
 * Whether a send bounces is decided when it is accepted, by the `bounceDomains` fault switch; when it shows, by
 * `bounceAfterMs` / `deliverAfterMs`; when analytics sees it, by `analyticsDelayMs`.
 */

export interface SimulatedConversation {
  readonly conversationId: string;
  readonly kind: 'email' | 'message';
  /** The message id of an agentless message (MessageData.id). */
  readonly messageId?: string;
  readonly to: string;
  readonly from: string;
  readonly subject?: string;
  readonly createdAtMs: number;
  readonly bounces: boolean;
  readonly settlesAtMs: number;
}

/** Where a send stands at a time: still on its way, delivered, or bounced / failed. */
type Progress = 'queued' | 'delivered' | 'failed';

export interface SimulatorAnswer {
  readonly status: number;
  readonly body: unknown;
  /** The recorded path (ids in the path are kept: the simulator's log is for tests). */
  readonly method: string;
}

const EMAIL_PATH = /^\/api\/v2\/conversations\/emails\/([^/]+)$/;
const MESSAGE_PATH = /^\/api\/v2\/conversations\/messages\/([^/]+)\/messages\/([^/]+)$/;
const DETAILS_PATH = '/api/v2/analytics/conversations/details';
const QUERY_PATH = '/api/v2/analytics/conversations/details/query';

export class ConversationStore {
  readonly #byId = new Map<string, SimulatedConversation>();

  get size(): number {
    return this.#byId.size;
  }

  all(): SimulatedConversation[] {
    return [...this.#byId.values()];
  }

  remember(
    kind: 'email' | 'message',
    response: Record<string, unknown>,
    request: Record<string, unknown>,
    faults: FaultSettings,
    now = Date.now(),
  ): void {
    const conversationId = response['conversationId'];
    if (typeof conversationId !== 'string') return;
    const text = (value: unknown) => (typeof value === 'string' ? value : '');
    const to =
      kind === 'email'
        ? text((request['toAddresses'] as { email?: unknown }[] | undefined)?.[0]?.email)
        : text(request['toAddress']);
    const from =
      kind === 'email'
        ? text((request['fromAddress'] as { email?: unknown } | undefined)?.email)
        : text(request['fromAddress']);
    const bounces = bouncesTo(to, faults.bounceDomains);
    this.#byId.set(conversationId, {
      conversationId,
      kind,
      ...(kind === 'message' && typeof response['id'] === 'string' && { messageId: response['id'] }),
      to,
      from,
      ...(typeof request['subject'] === 'string' && { subject: request['subject'] }),
      createdAtMs: now,
      bounces,
      settlesAtMs: now + (bounces ? faults.bounceAfterMs : faults.deliverAfterMs),
    });
  }

  /** Answers a status or analytics call, or undefined when the path is not one of these. */
  answer(
    method: string,
    path: string,
    url: URL,
    raw: string,
    faults: FaultSettings,
    correlationId: string,
    now = Date.now(),
  ): SimulatorAnswer | undefined {
    const email = EMAIL_PATH.exec(path)?.[1];
    if (method === 'GET' && email !== undefined && email !== 'agentless') {
      const found = this.#byId.get(decodeURIComponent(email));
      if (!found || found.kind !== 'email') return notFound(method, correlationId, 'conversation');
      return { method, status: 200, body: emailConversation(found, progressOf(found, now)) };
    }
    const message = MESSAGE_PATH.exec(path);
    if (method === 'GET' && message) {
      const found = this.#byId.get(decodeURIComponent(message[1] ?? ''));
      if (!found || found.messageId !== decodeURIComponent(message[2] ?? '')) {
        return notFound(method, correlationId, 'message');
      }
      return { method, status: 200, body: messageData(found, progressOf(found, now)) };
    }
    if ((method === 'GET' && path === DETAILS_PATH) || (method === 'POST' && path === QUERY_PATH)) {
      if (faults.analyticsStatus !== 0) {
        const status = faults.analyticsStatus;
        return {
          method,
          status,
          body: {
            status,
            code: status === 403 ? 'missing.permissions' : 'analytics.unavailable',
            message:
              status === 403
                ? 'Unable to perform the requested action. You are missing the following permission(s): [analytics:conversationDetail:view]'
                : 'injected fault',
            contextId: correlationId,
            details: [],
            errors: [],
          },
        };
      }
      const visible = (c: SimulatedConversation) => c.createdAtMs + faults.analyticsDelayMs <= now;
      if (method === 'GET') {
        // Both `id=a,b` (GENESYS.md) and `id=a&id=b` (the SDK's form).
        const ids = url.searchParams
          .getAll('id')
          .flatMap((v) => v.split(','))
          .filter((id) => id !== '');
        if (ids.length === 0 || ids.length > 100) {
          return badRequest(method, correlationId, 'id', 'between 1 and 100 conversation ids are required');
        }
        const conversations = ids.flatMap((id) => {
          const found = this.#byId.get(id);
          return found && visible(found)
            ? [analyticsConversation(found, progressOf(found, now), faults)]
            : [];
        });
        const body: Models.AnalyticsConversationWithoutAttributesMultiGetResponse = { conversations };
        return { method, status: 200, body };
      }
      return this.#query(raw, faults, correlationId, now, visible);
    }
    return undefined;
  }

  #query(
    raw: string,
    faults: FaultSettings,
    correlationId: string,
    now: number,
    visible: (c: SimulatedConversation) => boolean,
  ): SimulatorAnswer {
    const method = 'POST';
    let query: Models.ConversationQuery;
    try {
      query = JSON.parse(raw) as Models.ConversationQuery;
    } catch {
      return badRequest(method, correlationId, 'body', 'the body is not JSON');
    }
    const interval = typeof query?.interval === 'string' ? query.interval.split('/') : [];
    const start = Date.parse(interval[0] ?? '');
    const end = Date.parse(interval[1] ?? '');
    if (interval.length !== 2 || Number.isNaN(start) || Number.isNaN(end) || end <= start) {
      return badRequest(method, correlationId, 'interval', 'interval must be an ISO-8601 start/end');
    }
    const pageSize = query.paging?.pageSize ?? 25;
    const pageNumber = query.paging?.pageNumber ?? 1;
    if (
      !Number.isInteger(pageSize) ||
      pageSize < 1 ||
      pageSize > 100 ||
      !Number.isInteger(pageNumber) ||
      pageNumber < 1
    ) {
      return badRequest(method, correlationId, 'paging', 'pageSize 1..100 and pageNumber from 1');
    }
    const matching = this.all()
      .filter((c) => visible(c) && c.createdAtMs >= start && c.createdAtMs < end)
      .map((c) => analyticsConversation(c, progressOf(c, now), faults))
      .filter((c) => (query.segmentFilters ?? []).every((filter) => matchesFilter(c, filter)))
      .sort((a, b) => (a.conversationStart ?? '').localeCompare(b.conversationStart ?? ''));
    const page = matching.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
    const body: Models.AnalyticsConversationQueryResponse = {
      totalHits: matching.length,
      ...(page.length > 0 && { conversations: page }),
    };
    return { method, status: 200, body };
  }
}

function bouncesTo(to: string, bounceDomains: readonly string[]): boolean {
  const lower = to.toLowerCase();
  const domain = lower.slice(lower.lastIndexOf('@') + 1);
  return bounceDomains.some((d) =>
    lower.includes('@') ? domain === d || domain.endsWith(`.${d}`) : lower.startsWith(d),
  );
}

function progressOf(c: SimulatedConversation, now: number): Progress {
  if (now < c.settlesAtMs) return 'queued';
  return c.bounces ? 'failed' : 'delivered';
}

function emailConversation(c: SimulatedConversation, progress: Progress): Models.EmailConversation {
  const customer: Models.EmailMediaParticipant = {
    id: participantId(c, 'customer'),
    purpose: 'customer',
    address: c.to,
    direction: 'outbound',
    state: progress === 'queued' ? 'connected' : 'disconnected',
    ...(progress === 'failed' && {
      disconnectType: 'error',
      // As reported from Genesys: the bounce names the address, so a client must not store the message as is.
      errorInfo: {
        code: 'email.delivery.failed',
        message: `Delivery to ${c.to} failed: 550 5.1.1 The email account does not exist`,
      },
    }),
  };
  const agent: Models.EmailMediaParticipant = {
    id: participantId(c, 'agent'),
    purpose: 'agent',
    address: c.from,
    direction: 'outbound',
    state: 'disconnected',
  };
  return { id: c.conversationId, participants: [agent, customer] };
}

function messageData(c: SimulatedConversation, progress: Progress): Models.MessageData {
  return {
    id: c.messageId,
    timestamp: new Date(c.createdAtMs).toISOString(),
    fromAddress: c.from,
    toAddress: c.to,
    direction: 'outbound',
    status:
      progress === 'queued' ? 'sent' : progress === 'delivered' ? 'delivery-success' : 'delivery-failed',
    conversationId: c.conversationId,
  };
}

function analyticsConversation(
  c: SimulatedConversation,
  progress: Progress,
  faults: FaultSettings,
): Models.AnalyticsConversationWithoutAttributes {
  const session: Models.AnalyticsSession = {
    mediaType: c.kind,
    direction: 'outbound',
    addressTo: c.to,
    addressFrom: c.from,
    ...(!faults.omitDeliveryStatus && {
      deliveryStatus:
        progress === 'queued' ? 'Queued' : progress === 'delivered' ? 'DeliverySuccess' : 'DeliveryFailed',
      deliveryStatusChangeDate: new Date(progress === 'queued' ? c.createdAtMs : c.settlesAtMs).toISOString(),
    }),
  };
  return {
    conversationId: c.conversationId,
    conversationStart: new Date(c.createdAtMs).toISOString(),
    originatingDirection: 'outbound',
    participants: [{ participantId: participantId(c, 'customer'), purpose: 'customer', sessions: [session] }],
  };
}

/** One segment filter (`and`/`or` of predicates) over the conversation's sessions. */
function matchesFilter(
  c: Models.AnalyticsConversationWithoutAttributes,
  filter: Models.SegmentDetailQueryFilter,
): boolean {
  const sessions = (c.participants ?? []).flatMap((p) => p.sessions ?? []);
  const predicates = filter.predicates ?? [];
  const test = (p: Models.SegmentDetailQueryPredicate) =>
    sessions.some((s) => {
      const value =
        p.dimension === 'conversationId'
          ? c.conversationId
          : (s as Record<string, unknown>)[p.dimension ?? ''];
      if (p.operator === 'exists') return value !== undefined;
      if (p.operator === 'notExists') return value === undefined;
      return typeof value === 'string' && value === p.value;
    });
  return filter.type === 'or' ? predicates.some(test) : predicates.every(test);
}

function participantId(c: SimulatedConversation, role: string): string {
  return createHash('sha256').update(`${c.conversationId}/${role}`).digest('hex').slice(0, 32);
}

function notFound(method: string, correlationId: string, what: string): SimulatorAnswer {
  return {
    method,
    status: 404,
    body: { status: 404, code: 'not.found', message: `The ${what} was not found.`, contextId: correlationId },
  };
}

function badRequest(method: string, correlationId: string, field: string, why: string): SimulatorAnswer {
  return {
    method,
    status: 400,
    body: {
      status: 400,
      code: 'bad.request',
      message: `The request could not be understood by the server due to malformed syntax: ${why}`,
      contextId: correlationId,
      details: [{ fieldName: field, errorCode: 'INVALID' }],
    },
  };
}
