import { BridgeError } from '../errors.js';
import type { Template } from './template.js';
import type { Rule } from './rule-set.js';

/**
 * The rule's own idempotency key, rendered over the event; undefined when the rule has none (the default applies).
 * Rendered even without a ledger, so that an event lacking the key's fields fails the same way with or without one.
 */
export function ruleIdempotencyKey(rule: Rule, scope: Record<string, unknown>): string | undefined {
  return rule.idempotencyKey === undefined ? undefined : renderedKey(rule.idempotencyKey, scope);
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
  return rule.orderingKey === undefined ? kafkaKey : renderedKey(rule.orderingKey, scope);
}

/** An empty key would lump together every event whose field is blank: as good as missing. */
function renderedKey(template: Template, scope: Record<string, unknown>): string {
  const key = template.render(scope);
  if (key === '')
    throw new BridgeError('TEMPLATE_VARIABLE_MISSING', `${template.field}: rendered an empty key`);
  return key;
}
