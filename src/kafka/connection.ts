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
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message } = entry;
        const extra = entry as unknown as Record<string, unknown>;
        const fields = { namespace, error: extra['error'], broker: extra['broker'] };
        if (level === logLevel.ERROR) log.error(fields, message);
        else if (level === logLevel.WARN) log.warn(fields, message);
        else log.debug(fields, message);
      },
  });
}
