/**
 * Baseline 2: the consumer a user would write by hand: kafkajs eachMessage, one awaited got call per event, a token
 * fetched once. Correct (nothing is committed before its send) but one call at a time.
 */
import { got } from 'got';
import { Kafka, logLevel } from 'kafkajs';

const {
  KAFKA_BROKERS = '',
  KAFKA_GROUP_ID = '',
  TOPIC = '',
  GENESYS_URL = '',
  CLIENT_ID = '',
  CLIENT_SECRET = '',
} = process.env;

const token = await got
  .post(`${GENESYS_URL}/oauth/token`, {
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
    form: { grant_type: 'client_credentials' },
  })
  .json<{ access_token: string }>();

const consumer = new Kafka({
  clientId: 'bench-hand',
  brokers: KAFKA_BROKERS.split(','),
  logLevel: logLevel.NOTHING,
}).consumer({
  groupId: KAFKA_GROUP_ID,
});
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('{"joined":true}\n'));
await consumer.connect();
await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
await consumer.run({
  eachMessage: async ({ message }) => {
    const event = JSON.parse(message.value?.toString() ?? '{}') as { orderId: string; email: string };
    await got.post(`${GENESYS_URL}/api/v2/conversations/emails/agentless`, {
      headers: { authorization: `Bearer ${token.access_token}` },
      json: {
        senderType: 'Outbound',
        fromAddress: { email: 'orders@shop.example' },
        toAddresses: [{ email: event.email }],
        subject: `Order ${event.orderId}`,
        textBody: 'Shipped.',
      },
    });
  },
});
process.on('SIGTERM', () => {
  void consumer.disconnect().finally(() => process.exit(0));
});
