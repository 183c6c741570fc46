import { BridgeError } from '../errors.js';
import type { Rule } from './rule-set.js';

/**
 * The rule's own idempotency key, rendered over the event; undefined when the rule has none (the default applies).
 * Rendered even without a ledger, so that an event lacking the key's fields fails the same way with or without one.
 */
export function ruleIdempotencyKey(rule: Rule, scope: Record<string, unknown>): string | undefined {
  if (rule.idempotencyKey === undefined) return undefined;
  const key = rule.idempotencyKey.render(scope);
  if (key === '') {
    throw new BridgeError('TEMPLATE_VARIABLE_MISSING', `${rule.idempotencyKey.field}: rendered an empty key`);
  }
  return key;
}

/**
 * The ordering key of a rule's delivery: its own `orderingKey` rendered over the event, or else the Kafka message key
 * (undefined for a record without one: no order to keep).
 */
export function ruleOrderingKey(
  rule: Rule,
  scope: Record<string, unknown>,
  kafkaKey: string | undefined,
): string | undefined {
  if (rule.orderingKey === undefined) return kafkaKey;
  const key = rule.orderingKey.render(scope);
  if (key === '') {
    throw new BridgeError('TEMPLATE_VARIABLE_MISSING', `${rule.orderingKey.field}: rendered an empty key`);
  }
  return key;
}
