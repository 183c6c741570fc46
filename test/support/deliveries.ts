import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import type { GenesysSimulator } from '../../src/simulator/server.js';
import { kafka, type TestRecord } from './kafka.js';
import { writeRulesFile } from './bridge.js';

/** A rules file with one agentless-email rule whose subject carries the event's orderId. */
export function orderEmailRules(topic: string): Promise<string> {
  return writeRulesFile(`
version: 1
rules:
  - name: order-shipped-email
    topics: [${topic}]
    match: { type: [OrderShipped] }
    action:
      agentlessEmail:
        from: { email: orders@shop.example, name: Shop }
        to: { email: "{{ customer.email }}" }
        subject: "Order {{ orderId }}"
        text: "Shipped."
`);
}

/** `count` OrderShipped events spread over `partitions`, orderIds o-0, o-1, … */
export function orderEvents(count: number, partitions: number, from = 0): TestRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `customer-${(from + i) % 17}`,
    partition: (from + i) % partitions,
    value: {
      type: 'OrderShipped',
      orderId: `o-${from + i}`,
      customer: { email: `c${from + i}@example.com` },
    },
  }));
}

/** How many times the simulator accepted an email for each orderId. */
export function acceptedPerOrder(simulator: GenesysSimulator): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of simulator.received(AGENTLESS_EMAIL_PATH)) {
    if (r.status !== 200) continue;
    const subject = (r.body as { subject?: string } | undefined)?.subject ?? '';
    const orderId = subject.replace(/^Order /, '');
    counts.set(orderId, (counts.get(orderId) ?? 0) + 1);
  }
  return counts;
}

/** Every one of orderIds o-0…o-(count-1) accepted exactly once, and nothing else. */
export function expectEachOnce(simulator: GenesysSimulator, count: number): string[] {
  const counts = acceptedPerOrder(simulator);
  const problems: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = counts.get(`o-${i}`) ?? 0;
    if (n !== 1) problems.push(`o-${i} accepted ${n} times`);
  }
  if (counts.size !== count) problems.push(`${counts.size} distinct orders accepted, expected ${count}`);
  return problems;
}

/** Records on a topic (0 when it does not exist). */
export async function recordCount(topic: string): Promise<number> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}
