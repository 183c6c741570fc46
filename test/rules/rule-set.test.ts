import { describe, expect, it } from 'vitest';
import { compileAction } from '../../src/rules/action.js';
import { compilePattern, exactFields, type Pattern } from '../../src/rules/pattern.js';
import { RuleSet, type Rule } from '../../src/rules/rule-set.js';

const action = compileAction(
  { agentlessEmail: { from: { email: 'a@b.co' }, to: { email: 'a@b.co' }, text: 'x' } },
  'action',
);

function rule(name: string, topic: string, match: Pattern | undefined): Rule {
  return {
    name,
    topics: [topic],
    matches: compilePattern(match),
    action,
    exactFields: exactFields(match),
    delivery: 'at-most-once',
  };
}

describe('RuleSet index', () => {
  // 100 topics × 100 rules: per topic, 90 rules on `type` (45 types, two rules each, one of them also requiring a
  // nested exact field), 5 rules on `region` only, and 5 rules with no exact field (prefix / $or / no pattern).
  const rules: Rule[] = [];
  for (let t = 0; t < 100; t++) {
    const topic = `topic-${t}`;
    for (let i = 0; i < 45; i++) {
      rules.push(rule(`t${t}-type${i}-a`, topic, { type: [`Event${i}`] }));
      rules.push(rule(`t${t}-type${i}-b`, topic, { type: [`Event${i}`], customer: { tier: ['gold'] } }));
    }
    for (let i = 0; i < 5; i++) rules.push(rule(`t${t}-region${i}`, topic, { region: [`r${i}`, `s${i}`] }));
    rules.push(rule(`t${t}-prefix`, topic, { type: [{ prefix: 'Event1' }] }));
    rules.push(rule(`t${t}-or`, topic, { $or: [{ type: ['Event3'] }, { region: ['r1'] }] }));
    rules.push(rule(`t${t}-all`, topic, undefined));
    rules.push(rule(`t${t}-exists`, topic, { refund: [{ exists: true }] }));
    rules.push(rule(`t${t}-number`, topic, { amount: [{ numeric: ['>', 100] }] }));
  }

  it('holds 10,000 rules over 100 topics', () => {
    const set = new RuleSet(rules);
    expect(set.rules).toHaveLength(10_000);
    expect(set.topics).toHaveLength(100);
  });

  it('tests an event only against the rules its topic and exact-value fields allow', () => {
    const set = new RuleSet(rules);
    const matched = set.match('topic-7', { type: 'Event12', customer: { tier: 'gold' }, region: 'r1' });
    // Candidates: the 2 rules on type Event12, the 1 region rule allowing r1, the 5 unindexed rules.
    expect(set.rulesEvaluated).toBe(2 + 1 + 5);
    expect(matched.map((r) => r.name)).toEqual([
      't7-type12-a',
      't7-type12-b',
      't7-region1',
      't7-prefix',
      't7-or',
      't7-all',
    ]);
  });

  it('a type: number is not the string key of the same digits, and an unknown topic costs nothing', () => {
    const set = new RuleSet(rules);
    expect(set.match('no-such-topic', { type: 'Event1' })).toEqual([]);
    expect(set.rulesEvaluated).toBe(0);
    set.match('topic-0', { type: 5 });
    expect(set.rulesEvaluated).toBe(5);
  });

  it('an array in the event looks up every element', () => {
    const set = new RuleSet(rules);
    const matched = set.match('topic-1', { type: ['Event4', 'Event40'] });
    expect(set.rulesEvaluated).toBe(4 + 5);
    expect(matched.map((r) => r.name)).toEqual(['t1-type4-a', 't1-type40-a', 't1-all']);
  });

  it('gives the same answer as testing every rule of the topic', () => {
    const set = new RuleSet(rules);
    const events = [
      { type: 'Event3' },
      { type: 'Event10', amount: 150, refund: null },
      { region: 's2', customer: { tier: 'gold' }, type: 'Event44' },
      { type: ['Event1', 'Event2'], customer: [{ tier: 'silver' }, { tier: 'gold' }] },
      {},
    ];
    for (const event of events) {
      const expected = rules
        .filter((r) => r.topics.includes('topic-3') && r.matches(event))
        .map((r) => r.name);
      expect(set.match('topic-3', event).map((r) => r.name)).toEqual(expected);
    }
  });
});
