import type { InboundMessage } from '../kafka/message.js';
import type { Rule } from '../rules/rule-set.js';
import type { SkippedState } from './ledger/ledger.js';
import type { SuppressionStore } from './suppressions.js';

/** Why a delivery is not made at all: too old to matter, or to a recipient that bounced recently. */
export interface Guarded {
  readonly state: SkippedState;
  /** Free of personal data. */
  readonly reason: string;
}

export interface DeliveryGuards {
  check(rule: Rule, message: InboundMessage, recipientHash: string): Promise<Guarded | undefined>;
}

/**
 * The two guards a notification system needs (docs/deliveries.md): a rule's `maxEventAge`, by the record's Kafka
 * timestamp, so that a backlog or a replay does not send "your order shipped" days late; and the suppression list.
 */
export class Guards implements DeliveryGuards {
  constructor(
    private readonly suppressions: SuppressionStore | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async check(rule: Rule, message: InboundMessage, recipientHash: string): Promise<Guarded | undefined> {
    const maxAge = rule.maxEventAgeMs;
    const timestamp = Number(message.timestamp);
    if (maxAge !== undefined && Number.isFinite(timestamp) && timestamp > 0) {
      const age = this.now() - timestamp;
      if (age > maxAge) {
        return {
          state: 'expired',
          reason: `the event is ${Math.round(age / 1000)} s old (Kafka timestamp ${new Date(timestamp).toISOString()}), older than the rule's maxEventAge of ${Math.round(maxAge / 1000)} s`,
        };
      }
    }
    const suppressed = await this.suppressions?.find(recipientHash, new Date(this.now()));
    if (suppressed) {
      return {
        state: 'suppressed',
        reason: `the recipient is suppressed until ${suppressed.until}: ${suppressed.reason}${suppressed.conversationId !== undefined ? ` on conversation ${suppressed.conversationId}` : ''}`,
      };
    }
    return undefined;
  }
}
