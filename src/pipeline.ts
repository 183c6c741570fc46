import { ShutdownError, isBridgeError } from './errors.js';
import { genesysIdOf, recipientOf, requestFor } from './genesys/actions.js';
import type { GenesysClient } from './genesys/client.js';
import type { Health } from './health.js';
import { Decoder, type Decoded } from './kafka/decoder.js';
import type { DeadLetterWriter, Stage } from './kafka/dead-letter.js';
import { coordinatesOf, keyOf, type InboundMessage } from './kafka/message.js';
import { decide, type FailureOutcome } from './delivery/outcome.js';
import { backoffMs, type RetryPolicy } from './delivery/retry-policy.js';
import type { RuleSet, Rule } from './rules/rule-set.js';
import { templateScope } from './rules/template.js';
import { personalDataHash, type Logger } from './telemetry/logger.js';

export interface PipelineDeps {
  /** Read on every event, so that a reload can swap it. */
  readonly rules: () => RuleSet;
  readonly genesys: GenesysClient;
  readonly deadLetters: DeadLetterWriter;
  readonly health: Health;
  readonly retryPolicy: RetryPolicy;
  readonly logger: Logger;
  /** Absent: plain JSON only, no schema registry. */
  readonly decoder?: Decoder;
}

export interface HandleContext {
  /** Aborts waits (backoff, pause probes) when the bridge stops. */
  readonly stopSignal: AbortSignal;
  /** Aborts in-flight Genesys calls: fires only after the shutdown grace period. */
  readonly callSignal: AbortSignal;
  /** Keeps the consumer's group membership while an event takes long (retries, pauses). */
  readonly heartbeat: () => Promise<void>;
}

/** The final outcome of one delivery (one rule applied to one event). */
export type DeliveryOutcome = 'sent' | 'dead-lettered';

/**
 * The order of the stages: decode → match → render → deliver → record. `handle` resolves once the event's outcome
 * is final (every matching rule sent or dead-lettered), which is when its offset may be committed. It throws only
 * ShutdownError, or whatever the heartbeat throws on a rebalance; the event is then redelivered.
 */
export class Pipeline {
  readonly #deps: PipelineDeps;
  readonly #decoder: Decoder;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#decoder = deps.decoder ?? new Decoder();
  }

  async handle(message: InboundMessage, ctx: HandleContext): Promise<void> {
    const log = this.#deps.logger.child({
      event: {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        key: keyOf(message),
      },
    });

    const decoded = await this.#decode(message, log, ctx);
    if (decoded === 'dead-lettered') return;
    if (decoded.kind === 'tombstone') {
      log.debug('tombstone skipped');
      return;
    }
    const event = decoded.event;

    const rules = this.#deps.rules().match(message.topic, event);
    if (rules.length === 0) {
      log.debug('event matched no rule');
      return;
    }
    const scope = templateScope(event);
    for (const rule of rules) {
      await this.#deliver(
        message,
        rule,
        scope,
        log.child({ rule: rule.name, action: rule.action.kind }),
        ctx,
      );
    }
  }

  async #deliver(
    message: InboundMessage,
    rule: Rule,
    scope: Record<string, unknown>,
    log: Logger,
    ctx: HandleContext,
  ): Promise<DeliveryOutcome> {
    let rendered;
    try {
      rendered = rule.action.render(scope);
    } catch (error) {
      await this.#deadLetter(message, error, 'render', rule.name, log, ctx);
      return 'dead-lettered';
    }
    const request = requestFor(rendered);
    const recipient = personalDataHash(recipientOf(rendered));

    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.#deps.genesys.send(request, ctx.callSignal);
        if (this.#deps.health.resume()) log.info('Genesys accepts calls again: delivery resumed');
        log.info(
          {
            outcome: 'sent',
            conversationId: genesysIdOf(response.body),
            correlationId: response.correlationId,
            recipient,
            attempts: attempt,
          },
          'delivery',
        );
        return 'sent';
      } catch (error) {
        if (error instanceof ShutdownError) throw error;
        const outcome = decide(error, attempt, this.#deps.retryPolicy);
        if (outcome.kind === 'dead-letter') {
          await this.#deadLetter(message, error, 'deliver', rule.name, log, ctx);
          return 'dead-lettered';
        }
        await this.#waitOut(outcome, attempt, log, ctx);
      }
    }
  }

  /** Decodes; an event at fault is dead-lettered, a registry at fault is retried or paused on, never dead-lettered. */
  async #decode(
    message: InboundMessage,
    log: Logger,
    ctx: HandleContext,
  ): Promise<Decoded | 'dead-lettered'> {
    for (let attempt = 1; ; attempt++) {
      try {
        const decoded = await this.#decoder.decode(message);
        if (attempt > 1 && this.#deps.health.resume()) log.info('the schema registry answers again: resumed');
        return decoded;
      } catch (error) {
        const outcome = decide(error, attempt, this.#deps.retryPolicy);
        // As in delivery, only a BridgeError dead-letters: a defect is retried rather than emptying the topic.
        if (outcome.kind === 'dead-letter') {
          await this.#deadLetter(message, error, 'decode', undefined, log, ctx);
          return 'dead-lettered';
        }
        await this.#waitOut(outcome, attempt, log, ctx);
      }
    }
  }

  async #waitOut(
    outcome: Exclude<FailureOutcome, { kind: 'dead-letter' }>,
    attempt: number,
    log: Logger,
    ctx: HandleContext,
  ) {
    if (outcome.kind === 'pause') {
      if (this.#deps.health.pause(outcome.code, outcome.reason)) {
        log.error(
          { code: outcome.code, probeInMs: outcome.probeInMs },
          `delivery paused: ${outcome.reason}. Nothing is committed or dead-lettered until this is fixed; probing again every ${Math.round(outcome.probeInMs / 1000)} s`,
        );
      }
      await wait(outcome.probeInMs, ctx);
      return;
    }
    log.warn(
      { code: outcome.code, attempt, retryInMs: outcome.delayMs },
      `delivery will be retried: ${outcome.reason}`,
    );
    await wait(outcome.delayMs, ctx);
  }

  /** Dead-letters the event; retries the write itself until it succeeds, since dropping it would lose the event. */
  async #deadLetter(
    message: InboundMessage,
    error: unknown,
    stage: Stage,
    rule: string | undefined,
    log: Logger,
    ctx: HandleContext,
  ): Promise<void> {
    const code = isBridgeError(error) ? error.code : 'DECODE_FAILED';
    const reason = isBridgeError(error) ? error.message : 'unexpected error';
    for (let attempt = 1; ; attempt++) {
      try {
        const topic = await this.#deps.deadLetters.write(message, { code, message: reason, stage, rule });
        log.warn({ outcome: 'dead-lettered', code, stage, deadLetterTopic: topic, reason }, 'delivery');
        return;
      } catch (writeError) {
        const delayMs = backoffMs(attempt, this.#deps.retryPolicy);
        log.error(
          { source: coordinatesOf(message), attempt, retryInMs: delayMs },
          `dead-letter write failed, retrying: ${(writeError as Error).message}`,
        );
        await wait(delayMs, ctx);
      }
    }
  }
}

const HEARTBEAT_EVERY_MS = 3_000;

/** Sleeps `ms`, heartbeating the group meanwhile; throws ShutdownError as soon as the bridge stops. */
async function wait(ms: number, ctx: HandleContext): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) return;
    await sleep(Math.min(left, HEARTBEAT_EVERY_MS), ctx.stopSignal);
    await ctx.heartbeat();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new ShutdownError());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ShutdownError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
