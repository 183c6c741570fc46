import type { CompiledAction } from './action.js';
import type { Template } from './template.js';
import type { Connection } from './connection.js';
import { valuesAt, type KafkaMeta, type Matcher, type Pattern, type PatternValue } from './pattern.js';

export interface Rule {
  readonly name: string;
  readonly topics: readonly string[];
  readonly matches: Matcher;
  readonly action: CompiledAction;
  /** How a delivery left pending by an earlier run is resolved (docs/deliveries.md). */
  readonly delivery: DeliveryPolicy;
  /** What tells two deliveries of this rule apart in the ledger. Absent: the event's topic/partition/offset. */
  readonly idempotencyKey?: Template;
  /**
   * What this rule's deliveries are ordered by: deliveries rendering the same key (whatever rule made them) are sent in
   * offset order, one at a time. Absent: the Kafka message key.
   */
  readonly orderingKey?: Template;
  /** Events older than this (by their Kafka timestamp) are skipped as `expired`. Absent: no limit. */
  readonly maxEventAgeMs?: number;
  /** The rules file's connection this rule sends through. Absent: the one of the GENESYS_* variables. */
  readonly connection?: Connection;
  /** The rules file's `match`, from which the prefilter derives what an event's bytes must hold (prefilter.ts). */
  readonly pattern?: Pattern;
  /** Fields every match requires to hold one of a few exact values: what the index may use. */
  readonly exactFields?: readonly {
    readonly path: readonly string[];
    readonly values: readonly PatternValue[];
  }[];
}

export type DeliveryPolicy = 'at-most-once' | 'at-least-once';

/** One topic's rules: those reachable through one exact-value field, and those that must always be tested. */
interface TopicIndex {
  /** Index paths (JSON-encoded field paths) → value key → rules, positions in file order. */
  readonly byField: Map<string, { path: readonly string[]; byValue: Map<string, number[]> }>;
  readonly always: number[];
  readonly rules: Rule[];
}

/**
 * The compiled rules, indexed so that an event is tested only against the rules of its own topic that its exact-value
 * fields allow: each rule is filed under one field it requires (the one most rules of its topic share, so the number
 * of lookups per event stays small) and each of the values it allows there. Rules with no such field are always tested.
 */
export class RuleSet {
  readonly rules: readonly Rule[];
  /** Template files the rules read, for watching alongside the rules file. */
  readonly files: readonly string[];
  /** The rules file's named Genesys connections, by name. */
  readonly connections: ReadonlyMap<string, Connection>;
  readonly #byTopic = new Map<string, TopicIndex>();
  #evaluated = 0;

  constructor(
    rules: readonly Rule[],
    files: readonly string[] = [],
    connections: ReadonlyMap<string, Connection> = new Map(),
  ) {
    this.rules = Object.freeze([...rules]);
    this.files = Object.freeze([...files]);
    this.connections = connections;
    const perTopic = new Map<string, Rule[]>();
    for (const rule of rules) {
      for (const topic of rule.topics) {
        const list = perTopic.get(topic) ?? [];
        list.push(rule);
        perTopic.set(topic, list);
      }
    }
    for (const [topic, list] of perTopic) this.#byTopic.set(topic, buildIndex(list));
  }

  get topics(): string[] {
    return [...this.#byTopic.keys()];
  }

  /** How many times a rule's pattern was evaluated against an event, since this set was built. */
  get rulesEvaluated(): number {
    return this.#evaluated;
  }

  /** The rules of `topic` whose pattern matches `event` (and `kafka`, for `$kafka`), in file order. */
  match(topic: string, event: unknown, kafka?: KafkaMeta): Rule[] {
    const index = this.#byTopic.get(topic);
    if (!index) return [];
    const candidates = new Set<number>(index.always);
    for (const { path, byValue } of index.byField.values()) {
      for (const value of valuesAt(event, path)) {
        for (const position of byValue.get(valueKey(value)) ?? []) candidates.add(position);
      }
    }
    const ordered = [...candidates].sort((a, b) => a - b);
    this.#evaluated += ordered.length;
    return ordered.map((i) => index.rules[i] as Rule).filter((rule) => rule.matches(event, kafka));
  }
}

function buildIndex(rules: Rule[]): TopicIndex {
  const popularity = new Map<string, number>();
  for (const rule of rules) {
    for (const field of rule.exactFields ?? []) {
      const key = JSON.stringify(field.path);
      popularity.set(key, (popularity.get(key) ?? 0) + 1);
    }
  }
  const index: TopicIndex = { byField: new Map(), always: [], rules };
  rules.forEach((rule, position) => {
    let best: { key: string; path: readonly string[]; values: readonly PatternValue[] } | undefined;
    for (const field of rule.exactFields ?? []) {
      const key = JSON.stringify(field.path);
      if (!best || (popularity.get(key) ?? 0) > (popularity.get(best.key) ?? 0)) best = { key, ...field };
    }
    if (!best) {
      index.always.push(position);
      return;
    }
    let entry = index.byField.get(best.key);
    if (!entry) {
      entry = { path: best.path, byValue: new Map() };
      index.byField.set(best.key, entry);
    }
    for (const value of best.values) {
      const list = entry.byValue.get(valueKey(value)) ?? [];
      list.push(position);
      entry.byValue.set(valueKey(value), list);
    }
  });
  return index;
}

/** Type-strict: the number 5 and the string "5" are different keys, as they are different values. */
function valueKey(value: unknown): string {
  return `${value === null ? 'null' : typeof value}:${String(value)}`;
}
