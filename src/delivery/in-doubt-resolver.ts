import type { Models } from 'purecloud-platform-client-v2';
import { waitOut, type Waits } from '../wait.js';
import type { ActionKind } from '../genesys/rate-limiter.js';
import type { StatusClient } from '../genesys/status-client.js';
import type { RecipientHasher } from '../telemetry/logger.js';
import type { DeliveryRecord } from './ledger/ledger.js';

/**
 * Reconciles a delivery left `pending` by a crash, before anyone is asked: were it sent, Genesys would have an
 * outbound conversation to its recipient since the claim. The analytics details query over the window from the claim
 * to now is matched by recipient hash (the addresses Genesys returns are hashed here, never kept):
 * - exactly one match: it was sent — record it `sent` with that conversation id;
 * - none, once the window's analytics data can be taken as complete (RECONCILE_ANALYTICS_LAG_MS after the last
 *   moment the crashed run could have called): it was not sent — send it now, once;
 * - otherwise (several matches, no permission, no answer): it stays `in-doubt`, with the reason.
 * Unverified (GENESYS.md): how long analytics lags, and that agentless sends show in the query as outbound sessions
 * with `addressTo`. The rendered subject is not in the analytics session model, so it cannot narrow a match.
 */
export type Resolution =
  | { readonly kind: 'sent'; readonly conversationId: string; readonly reason: string }
  | { readonly kind: 'not-sent'; readonly reason: string }
  | { readonly kind: 'unknown'; readonly reason: string };

export interface InDoubtResolverOptions {
  readonly clientFor: (rule: string) => StatusClient | undefined;
  /** The bridge's own recipient hash (keyed with RECIPIENT_HASH_KEY), to compare Genesys' addresses with records. */
  readonly recipientHash: RecipientHasher;
  /** How long after a conversation the analytics query is taken to show it. */
  readonly analyticsLagMs: number;
  /** Before the claim too: clocks of the bridge and of Genesys differ. */
  readonly marginMs?: number;
  /** When this process started: a crashed run of the file ledger made its last call before that. */
  readonly processStartMs?: number;
}

const PAGE_SIZE = 100;
const MAX_PAGES = 20;

export class InDoubtResolver {
  readonly #options: InDoubtResolverOptions;

  constructor(options: InDoubtResolverOptions) {
    this.#options = options;
  }

  async resolve(record: DeliveryRecord, action: ActionKind, hooks: Waits = {}): Promise<Resolution> {
    const mediaType =
      action === 'agentlessEmail' ? 'email' : action === 'agentlessMessage' ? 'message' : undefined;
    if (mediaType === undefined) {
      return { kind: 'unknown', reason: 'only agentless emails and messages can be reconciled' };
    }
    if (record.recipientHash === undefined)
      return { kind: 'unknown', reason: 'the record has no recipient hash' };
    const client = this.#options.clientFor(record.rule);
    if (!client) return { kind: 'unknown', reason: 'the rule is no longer loaded' };
    // The crashed run's last call started before this process did (one file ledger, one process), and at the latest
    // when its record was last written plus a call's time.
    const lastCallMs = Math.max(this.#options.processStartMs ?? Date.now(), Date.parse(record.updatedAt));
    const completeAtMs = lastCallMs + this.#options.analyticsLagMs;
    const wait = completeAtMs - Date.now();
    if (wait > 0) await waitOut(wait, hooks);

    const start = new Date(Date.parse(record.createdAt) - (this.#options.marginMs ?? 60_000)).toISOString();
    const end = new Date(Date.now() + 1_000).toISOString();
    const matches: string[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const query: Models.ConversationQuery = {
        interval: `${start}/${end}`,
        segmentFilters: [
          {
            type: 'and',
            predicates: [
              { dimension: 'mediaType', value: mediaType },
              { dimension: 'direction', value: 'outbound' },
            ],
          },
        ],
        order: 'asc',
        paging: { pageSize: PAGE_SIZE, pageNumber: page },
      };
      const answer = await client.analyticsQuery(query, hooks);
      if (!answer.ok) {
        return {
          kind: 'unknown',
          reason: `the analytics query answered ${answer.status === 0 ? `nothing (${answer.code})` : `HTTP ${answer.status} ${answer.code}`}${answer.status === 403 ? ' (analytics:conversationDetail:view missing?)' : ''}`,
        };
      }
      const conversations = answer.body.conversations ?? [];
      for (const c of conversations) {
        const toRecipient = (c.participants ?? [])
          .flatMap((p) => p.sessions ?? [])
          .some(
            (s) =>
              s.addressTo !== undefined && this.#options.recipientHash(s.addressTo) === record.recipientHash,
          );
        if (toRecipient && c.conversationId !== undefined) matches.push(c.conversationId);
      }
      if (conversations.length < PAGE_SIZE || page * PAGE_SIZE >= (answer.body.totalHits ?? 0)) break;
      if (page === MAX_PAGES) {
        return { kind: 'unknown', reason: `more than ${MAX_PAGES * PAGE_SIZE} conversations in the window` };
      }
    }
    const window = `${start}/${end}`;
    if (matches.length === 1 && matches[0] !== undefined) {
      return {
        kind: 'sent',
        conversationId: matches[0],
        reason: `reconciled: Genesys has one outbound ${mediaType} to the recipient in ${window}`,
      };
    }
    if (matches.length > 1) {
      return {
        kind: 'unknown',
        reason: `ambiguous: ${matches.length} outbound ${mediaType}s to the recipient in ${window}`,
      };
    }
    return {
      kind: 'not-sent',
      reason: `reconciled: no outbound ${mediaType} to the recipient in ${window}, analytics taken as complete ${this.#options.analyticsLagMs} ms after the last possible call`,
    };
  }
}
