/**
 * Baseline 1, the ceiling: a bare kafkajs consumer that only reads the topic (no decoding, no rules, nothing sent).
 * Commits like any kafkajs consumer (autoCommit after each batch), so the runner measures it the same way as the bridge.
 */
import { Kafka, logLevel } from 'kafkajs';

const { KAFKA_BROKERS = '', KAFKA_GROUP_ID = '', TOPIC = '' } = process.env;
const consumer = new Kafka({
  clientId: 'bench-bare',
  brokers: KAFKA_BROKERS.split(','),
  logLevel: logLevel.NOTHING,
}).consumer({
  groupId: KAFKA_GROUP_ID,
});
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('{"joined":true}\n'));
await consumer.connect();
await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
let seen = 0;
await consumer.run({
  eachBatch: async ({ batch }) => {
    seen += batch.messages.length;
    await Promise.resolve();
  },
});
process.on('SIGTERM', () => {
  void consumer.disconnect().finally(() => {
    process.stdout.write(`${JSON.stringify({ seen })}\n`);
    process.exit(0);
  });
});
