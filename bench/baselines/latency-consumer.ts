/**
 * Baseline for the added latency: a bare kafkajs consumer of a topic published at the bridge's pace. For each event
 * it notes how long after its publication eachMessage saw it; once it has seen TOTAL events it prints those delays
 * and exits. What Kafka and this machine cost before the bridge does anything.
 */
import { Kafka, logLevel } from 'kafkajs';

const { KAFKA_BROKERS = '', KAFKA_GROUP_ID = '', TOPIC = '', TOTAL = '0' } = process.env;
const consumer = new Kafka({
  clientId: 'bench-latency',
  brokers: KAFKA_BROKERS.split(','),
  logLevel: logLevel.NOTHING,
}).consumer({ groupId: KAFKA_GROUP_ID, maxWaitTimeInMs: 1_000 });
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('{"joined":true}\n'));
await consumer.connect();
await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
const delaysMs: number[] = [];
await consumer.run({
  eachMessage: ({ message }) => {
    const { publishedAt } = JSON.parse(message.value?.toString() ?? '{}') as { publishedAt?: number };
    if (typeof publishedAt === 'number') delaysMs.push(Date.now() - publishedAt);
    if (delaysMs.length === Number(TOTAL)) {
      process.stdout.write(`${JSON.stringify({ delaysMs })}\n`);
      void consumer.disconnect().finally(() => process.exit(0));
    }
    return Promise.resolve();
  },
});
