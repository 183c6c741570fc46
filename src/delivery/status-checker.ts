import type { Models } from 'purecloud-platform-client-v2';
import { ShutdownError } from '../errors.js';
import { MAX_IDS_PER_MULTI_GET, type StatusAnswer, type StatusClient } from '../genesys/status-client.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DownstreamState, Ledger } from './ledger/ledger.js';
import type { OutcomeEvent, OutcomeListener } from './outcome-event.js';

/**
 * Finds out what became of each accepted agentless email and message: a first check some time after the send, then
 * again until the answer is final or the checks run out. It asks the batched analytics multi-get first (one call for
 * many conversations), and falls back per conversation (the email conversation's errorInfo, the message's status).
 * What it cannot tell for certain stays `unknown` with the reason — it never guesses. The facts it rests on are in
 * GENESYS.md ("What became of a send"); the deliveryStatus values and the bounce's errorInfo are unverified, so every
 * field is read as optional.
 *
 * Pending checks live in this process: a restart forgets them (their records stay `sent`).
 */

export interface StatusCheckerOptions {
  /** Where the statuses are recorded; absent: they are only told (metrics, outcome listener). */
  readonly ledger?: Ledger | undefined;
  /** The status client of the rule's connection (its token and budget). */
  readonly clientFor: (rule: string) => StatusClient | undefined;
  readonly firstCheckAfterMs: number;
  readonly checkEveryMs: number;
  readonly maxChecks: number;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  readonly onOutcome?: OutcomeListener | undefined;
  /** Checks held at most; beyond it a send is recorded `unknown` at once rather than growing memory without bound. */
  readonly maxPending?: number;
}

/** A check's verdict: final, or not yet (with what was seen). */
export type Verdict =
  | {
      readonly final: true;
      readonly state: Exclude<DownstreamState, 'unknown'>;
      readonly errorCode?: string;
      readonly reason?: string;
    }
  | { readonly final: false; readonly reason: string };

interface Tracked {
  readonly event: OutcomeEvent;
  readonly kind: 'email' | 'message';
  readonly conversationId: string;
  readonly messageId: string | undefined;
  checks: number;
  dueAt: number;
  lastReason: string;
  /** Recorded or rescheduled by #settle. */
  settled?: boolean;
}

export class StatusChecker {
  readonly #options: StatusCheckerOptions;
  #items: Tracked[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #round: Promise<void> | undefined;
  readonly #stop = new AbortController();

  constructor(options: StatusCheckerOptions) {
    this.#options = options;
  }

  /** Checks still to be made. */
  get pending(): number {
    return this.#items.length;
  }

  /** Told of every outcome; takes the accepted agentless emails and messages. */
  readonly listener: OutcomeListener = (event) => this.track(event);

  track(event: OutcomeEvent): void {
    if ((event.outcome !== 'sent' && event.outcome !== 'resolved') || this.#stop.signal.aborted) return;
    const kind =
      event.action === 'agentlessEmail'
        ? 'email'
        : event.action === 'agentlessMessage'
          ? 'message'
          : undefined;
    const conversationId = event.genesys?.conversationId;
    if (kind === undefined || conversationId === undefined) return;
    if (this.#items.length >= (this.#options.maxPending ?? 100_000)) {
      void this.#record(
        { event, kind, conversationId, messageId: undefined, checks: 0, dueAt: 0, lastReason: '' },
        'unknown',
        undefined,
        'not checked: too many status checks pending',
      );
      return;
    }
    const dueAt = Date.now() + this.#options.firstCheckAfterMs;
    this.#items.push({
      event,
      kind,
      conversationId,
      messageId: event.genesys?.messageId,
      checks: 0,
      dueAt,
      lastReason: '',
    });
    // Due after the timer already set (the usual case: every send adds the same delay): nothing to reschedule. Looking
    // through every pending check on each send made the sends cost more the more checks were pending.
    if (this.#timer !== undefined && dueAt >= this.#timerAt) return;
    this.#schedule();
  }

  /** Stops checking; the checks not made are forgotten (their records stay `sent`). */
  async stop(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#timer);
    await this.#round;
  }

  #schedule(): void {
    if (this.#round || this.#stop.signal.aborted || this.#items.length === 0) return;
    // A loop, not Math.min(...items): tens of thousands of arguments overflow the stack.
    let next = Infinity;
    for (const item of this.#items) next = Math.min(next, item.dueAt);
    if (this.#timer !== undefined && next >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#round = this.#runRound()
          .catch((error: unknown) => {
            if (!(error instanceof ShutdownError))
              this.#options.logger.warn({ err: error }, 'status check round failed');
          })
          .finally(() => {
            this.#round = undefined;
            this.#schedule();
          });
      },
      Math.max(0, next - Date.now()),
    );
    this.#timer.unref();
  }

  async #runRound(): Promise<void> {
    const now = Date.now();
    const due = this.#items.filter((i) => i.dueAt <= now);
    this.#items = this.#items.filter((i) => i.dueAt > now);
    try {
      await this.#checkAll(due);
    } catch (error) {
      // Not one check is lost to a fault of ours: what was not settled is tried again at the next interval.
      for (const item of due)
        if (!item.settled) this.#items.push({ ...item, dueAt: Date.now() + this.#options.checkEveryMs });
      throw error;
    }
  }

  async #checkAll(due: readonly Tracked[]): Promise<void> {
    const byRule = new Map<string, Tracked[]>();
    for (const item of due) {
      const rule = item.event.rule ?? '';
      const list = byRule.get(rule);
      if (list) list.push(item);
      else byRule.set(rule, [item]);
    }
    const hooks = { waitSignal: this.#stop.signal };
    for (const [rule, items] of byRule) {
      const client = this.#options.clientFor(rule);
      for (let i = 0; i < items.length; i += MAX_IDS_PER_MULTI_GET) {
        const batch = items.slice(i, i + MAX_IDS_PER_MULTI_GET);
        const verdicts = client
          ? await this.#check(client, batch, hooks)
          : batch.map((): Verdict => ({ final: false, reason: 'the rule is no longer loaded' }));
        for (const [index, item] of batch.entries()) await this.#settle(item, verdicts[index]);
      }
    }
  }

  async #check(client: StatusClient, batch: readonly Tracked[], hooks: { waitSignal: AbortSignal }) {
    const analytics = await client.analyticsDetails(
      batch.map((i) => i.conversationId),
      hooks,
    );
    const found = new Map<string, Models.AnalyticsConversationWithoutAttributes>();
    if (analytics.ok) {
      for (const c of analytics.body.conversations ?? [])
        if (c.conversationId) found.set(c.conversationId, c);
    }
    const verdicts: Verdict[] = [];
    for (const item of batch) {
      const conversation = found.get(item.conversationId);
      let verdict: Verdict = analytics.ok
        ? conversation
          ? fromAnalytics(conversation, item.kind)
          : { final: false, reason: 'analytics does not show the conversation (yet)' }
        : { final: false, reason: `analytics details: ${describe(analytics)}` };
      if (!verdict.final || (item.kind === 'email' && verdict.state === 'bounced')) {
        const direct = await this.#direct(client, item, hooks);
        if (direct.final) verdict = direct;
        else if (!verdict.final) verdict = { final: false, reason: `${verdict.reason}; ${direct.reason}` };
      }
      verdicts.push(verdict);
    }
    return verdicts;
  }

  /** Per conversation: the email conversation's errorInfo, or the message's status. */
  async #direct(client: StatusClient, item: Tracked, hooks: { waitSignal: AbortSignal }): Promise<Verdict> {
    if (item.kind === 'email') {
      const answer = await client.emailConversation(item.conversationId, hooks);
      return answer.ok
        ? fromEmailConversation(answer.body)
        : { final: false, reason: `email conversation: ${describe(answer)}` };
    }
    if (item.messageId === undefined)
      return { final: false, reason: 'no message id to look the message up by' };
    const answer = await client.message(item.conversationId, item.messageId, hooks);
    return answer.ok ? fromMessage(answer.body) : { final: false, reason: `message: ${describe(answer)}` };
  }

  async #settle(item: Tracked, verdict: Verdict | undefined): Promise<void> {
    item.settled = true;
    item.checks += 1;
    if (verdict?.final) {
      await this.#record(item, verdict.state, verdict.errorCode, verdict.reason);
      return;
    }
    item.lastReason = verdict?.reason ?? 'no answer';
    if (item.checks >= this.#options.maxChecks) {
      await this.#record(item, 'unknown', undefined, `after ${item.checks} check(s): ${item.lastReason}`);
      return;
    }
    this.#items.push({ ...item, settled: false, dueAt: Date.now() + this.#options.checkEveryMs });
  }

  async #record(
    item: Tracked,
    state: DownstreamState,
    errorCode: string | undefined,
    reason: string | undefined,
  ): Promise<void> {
    const { event } = item;
    const { ledger, logger, metrics, onOutcome } = this.#options;
    metrics?.deliveryStatus.inc({ rule: event.rule ?? '', status: state });
    logger.info(
      {
        outcome: state,
        rule: event.rule,
        idempotencyKey: event.idempotencyKey,
        conversationId: item.conversationId,
        recipient: event.recipientHash,
        errorCode,
        reason,
      },
      'delivery status',
    );
    if (ledger && event.rule !== undefined && event.idempotencyKey !== undefined) {
      try {
        await ledger.markOutcome(
          { rule: event.rule, idempotencyKey: event.idempotencyKey, ...event.event, traceId: event.traceId },
          state,
          { errorCode, reason },
        );
      } catch (error) {
        logger.warn(
          { err: error, idempotencyKey: event.idempotencyKey },
          'could not record a delivery status in the ledger',
        );
      }
    }
    onOutcome?.({
      ...event,
      outcome: state,
      at: new Date().toISOString(),
      errorCode,
      reason,
    });
  }
}

const DELIVERED = new Set(['deliverysuccess', 'delivered', 'read']);
const FAILED = new Set(['deliveryfailed', 'failed', 'bounced', 'bounce']);

/** The sessions' deliveryStatus (values unverified: compared case- and punctuation-blind). */
export function fromAnalytics(
  conversation: Models.AnalyticsConversationWithoutAttributes,
  kind: 'email' | 'message',
): Verdict {
  const statuses = (conversation.participants ?? [])
    .flatMap((p) => p.sessions ?? [])
    .filter((s) => s.mediaType === undefined || s.mediaType === kind)
    .flatMap((s) => (s.deliveryStatus === undefined ? [] : [s.deliveryStatus]));
  if (statuses.length === 0) return { final: false, reason: 'analytics shows no deliveryStatus' };
  const normal = (s: string) => s.toLowerCase().replace(/[^a-z]/g, '');
  const failed = statuses.find((s) => FAILED.has(normal(s)));
  if (failed !== undefined) {
    return {
      final: true,
      state: kind === 'email' ? 'bounced' : 'failed-downstream',
      errorCode: scrub(failed),
      reason: `analytics deliveryStatus ${scrub(failed)}`,
    };
  }
  if (statuses.some((s) => DELIVERED.has(normal(s)))) return { final: true, state: 'delivered' };
  return { final: false, reason: `analytics deliveryStatus ${statuses.map(scrub).join(', ')}` };
}

/** A participant's errorInfo is the bounce (GENESYS.md: reported some 20–25 s after the send; unverified). */
export function fromEmailConversation(conversation: Models.EmailConversation): Verdict {
  const errored = (conversation.participants ?? []).find((p) => p.errorInfo !== undefined);
  if (errored?.errorInfo) {
    return {
      final: true,
      state: 'bounced',
      errorCode: scrub(errored.errorInfo.code ?? 'unknown'),
      reason: scrub(errored.errorInfo.message ?? 'the email conversation carries an error'),
    };
  }
  // Genesys does not mark an email as delivered on the conversation: no error is not a proof of delivery.
  return { final: false, reason: 'the email conversation shows no error' };
}

export function fromMessage(message: Models.MessageData): Verdict {
  const status = typeof message.status === 'string' ? message.status : '';
  if (status === 'delivery-success' || status === 'read') return { final: true, state: 'delivered' };
  if (status === 'delivery-failed') {
    return {
      final: true,
      state: 'failed-downstream',
      errorCode: 'delivery-failed',
      reason: 'message status delivery-failed',
    };
  }
  return {
    final: false,
    reason: status === '' ? 'the message has no status' : `message status ${scrub(status)}`,
  };
}

function describe(answer: Exclude<StatusAnswer<unknown>, { ok: true }>): string {
  if (answer.status === 403)
    return `HTTP 403 ${answer.code} (the OAuth client lacks analytics:conversationDetail:view?)`;
  return answer.status === 0 ? `no answer (${answer.code})` : `HTTP ${answer.status} ${answer.code}`;
}

/**
 * Genesys' texts may carry the address that bounced (or a number): replaced, and cut short, so that what is stored
 * and published is free of personal data.
 */
export function scrub(text: string): string {
  return text
    .replace(/[^\s<>"'()[\]]+@[^\s<>"'()[\]]+/g, '<address>')
    .replace(/\+?\d[\d\s().-]{5,}\d/g, (run) => (run.replace(/\D/g, '').length >= 7 ? '<number>' : run))
    .slice(0, 300);
}
