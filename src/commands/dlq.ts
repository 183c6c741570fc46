import { parseArgs } from 'node:util';
import { loadKafkaConnectionConfig } from '../config.js';
import { createKafka } from '../kafka/connection.js';
import { replayDeadLetters } from '../kafka/dead-letter-replay.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const DLQ_USAGE = `  dlq replay --topic DLQ [--code CODE] [--rule NAME] [--to TOPIC]
                            Republish dead-lettered events to their source topic (or --to) with their original
                            key, value and headers, then exit. --code / --rule pick by reason. Each dead letter is
                            replayed for its own rule only, under its original idempotency keys: the event's rules
                            that sent are not sent again. Needs KAFKA_BROKERS (and the KAFKA_SECURITY_PROTOCOL settings of a secured cluster).`;

export async function dlqCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'replay') {
    process.stderr.write(`geb dlq: unknown subcommand "${sub ?? ''}"\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        topic: { type: 'string' },
        code: { type: 'string' },
        rule: { type: 'string' },
        to: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`geb dlq replay: ${(error as Error).message}\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  if (!values.topic) {
    process.stderr.write(`geb dlq replay: --topic is required\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  let connection;
  try {
    connection = loadKafkaConnectionConfig(env);
  } catch (error) {
    process.stderr.write(`geb dlq replay: ${(error as Error).message}\n`);
    return EXIT.config;
  }
  const logger = createLogger('warn');
  // The same TLS and SASL settings as `geb run`: a dead-letter topic lives on the same secured cluster.
  const kafka = createKafka({ ...connection, logger });
  let result;
  try {
    result = await replayDeadLetters({
      kafka,
      topic: values.topic,
      code: values.code,
      rule: values.rule,
      to: values.to,
    });
  } catch (error) {
    process.stderr.write(`geb dlq replay: replaying ${values.topic} failed: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
  const where = Object.entries(result.byTopic)
    .map(([topic, n]) => `${n} to ${topic}`)
    .join(', ');
  process.stdout.write(
    `replayed ${result.replayed} of ${result.read} dead-lettered event(s)${where ? ` (${where})` : ''}; ` +
      `${result.filtered} left out by --code/--rule, ${result.unroutable} without a source topic\n`,
  );
  return EXIT.ok;
}
