import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '../telemetry/logger.js';

export interface KafkaConnectionOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger: Logger;
}

/** One kafkajs client for the consumer and the dead-letter producer, logging through our logger. */
export function createKafka(options: KafkaConnectionOptions): Kafka {
  const log = options.logger.child({ component: 'kafkajs' });
  const verbose = log.isLevelEnabled('debug');
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    // kafkajs' INFO lines (joins, rebalances) are routine: they go to our debug level.
    logLevel: verbose ? logLevel.INFO : logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        const fields = { namespace: rest.namespace, error: rest['error'] as unknown, broker: rest['broker'] as unknown };
        if (level === logLevel.ERROR) log.error(fields, message);
        else if (level === logLevel.WARN) log.warn(fields, message);
        else log.debug(fields, message);
      },
  });
}
