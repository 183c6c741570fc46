/**
 * Baseline 2, the honest ceiling of a tool that must read the event: the bare consumer of bare-consumer.ts that also
 * `JSON.parse`s every value (UTF-8 decode included), so that the cost of reading the JSON shows by itself.
 */
import { Kafka, logLevel } from 'kafkajs';

const { KAFKA_BROKERS = '', KAFKA_GROUP_ID = '', TOPIC = '' } = process.env;
const consumer = new Kafka({
  clientId: 'bench-parse',
  brokers: KAFKA_BROKERS.split(','),
  logLevel: logLevel.NOTHING,
}).consumer({
  groupId: KAFKA_GROUP_ID,
});
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('{"joined":true}\n'));
await consumer.connect();
await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
let seen = 0;
// Kept, so that the parse cannot be optimised away.
let fields = 0;
await consumer.run({
  eachBatch: async ({ batch }) => {
    for (const message of batch.messages) {
      if (message.value === null) continue;
      const event = JSON.parse(message.value.toString('utf8')) as Record<string, unknown>;
      if (typeof event === 'object' && event !== null) fields += Object.keys(event).length;
    }
    seen += batch.messages.length;
    await Promise.resolve();
  },
});
process.on('SIGTERM', () => {
  void consumer.disconnect().finally(() => {
    process.stdout.write(`${JSON.stringify({ seen, fields })}\n`);
    process.exit(0);
  });
});
