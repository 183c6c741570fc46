import type { CompiledAction } from './action.js';
import type { Matcher } from './pattern.js';

export interface Rule {
  readonly name: string;
  readonly topics: readonly string[];
  readonly matches: Matcher;
  readonly action: CompiledAction;
  /** How a delivery left pending by an earlier run is resolved (docs/deliveries.md). */
  readonly delivery: DeliveryPolicy;
}

export type DeliveryPolicy = 'at-most-once' | 'at-least-once';

/** The compiled rules, indexed by topic so an event is only tested against the rules of its own topic. */
export class RuleSet {
  readonly rules: readonly Rule[];
  readonly #byTopic = new Map<string, Rule[]>();

  constructor(rules: readonly Rule[]) {
    this.rules = Object.freeze([...rules]);
    for (const rule of rules) {
      for (const topic of rule.topics) {
        const list = this.#byTopic.get(topic) ?? [];
        list.push(rule);
        this.#byTopic.set(topic, list);
      }
    }
  }

  get topics(): string[] {
    return [...this.#byTopic.keys()];
  }

  /** The rules of `topic` whose pattern matches `event`, in file order. */
  match(topic: string, event: unknown): Rule[] {
    return (this.#byTopic.get(topic) ?? []).filter((rule) => rule.matches(event));
  }
}
