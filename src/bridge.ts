import type { Config } from './config.js';
import { isBridgeError } from './errors.js';
import { GenesysClient } from './genesys/client.js';
import { createHttp } from './genesys/http.js';
import { TokenProvider } from './genesys/token-provider.js';
import { Health } from './health.js';
import { createKafka } from './kafka/connection.js';
import { startConsumer, type RunningConsumer } from './kafka/consumer.js';
import { DeadLetterWriter } from './kafka/dead-letter.js';
import { Decoder } from './kafka/decoder.js';
import { SchemaRegistryClient } from './kafka/schema-registry.js';
import { topicFilter } from './kafka/topic-filter.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './delivery/retry-policy.js';
import { Pipeline } from './pipeline.js';
import { loadRulesFile } from './rules/rules-file.js';
import type { Logger } from './telemetry/logger.js';

export interface BridgeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly retryPolicy?: RetryPolicy;
  /** How long in-flight Genesys calls may run on after a stop was asked for. */
  readonly shutdownGraceMs?: number;
  /** kafkajs gave up on the consumer: by default the process exits non-zero. */
  readonly onCrash?: (error: Error) => void;
}

export interface Bridge {
  readonly health: Health;
  readonly tokens: TokenProvider;
  /** Ordered and idempotent: stop fetching, let in-flight calls finish (up to the grace), commit, leave the group. */
  close(): Promise<void>;
}

/** Wires the stages together and joins the consumer group. The one place that owns the bridge's resources. */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const { config, logger } = options;
  const rules = await loadRulesFile(config.rulesFile);
  logger.info(
    { rulesFile: config.rulesFile, rules: rules.rules.length, topics: rules.topics },
    'rules loaded',
  );

  const http = createHttp({ requestTimeoutMs: config.genesys.requestTimeoutMs });
  const tokens = new TokenProvider({
    tokenUrl: config.genesys.tokenUrl,
    clientId: config.genesys.clientId,
    clientSecret: config.genesys.clientSecret,
    http,
    logger: logger.child({ component: 'token-provider' }),
  });
  const genesys = new GenesysClient({ apiBaseUrl: config.genesys.apiBaseUrl, http, tokens });
  const health = new Health();

  // An early token request turns a wrong secret or region into a clear log line at start-up, not at the first event.
  // It is not fatal: the first event pauses on the same error and probes until it is fixed.
  tokens.getToken().then(
    () => logger.info({ tokenUrl: config.genesys.tokenUrl }, 'Genesys OAuth client accepted'),
    (error: unknown) => {
      if (isBridgeError(error)) {
        logger.error({ code: error.code }, error.message);
      } else {
        logger.error({ err: error }, 'token request failed');
      }
    },
  );

  const kafka = createKafka({ brokers: config.kafka.brokers, clientId: config.kafka.clientId, logger });
  const deadLetters = new DeadLetterWriter(kafka, config.deadLetterTopic);
  await deadLetters.connect();

  const pipeline = new Pipeline({
    rules: () => rules,
    genesys,
    deadLetters,
    health,
    retryPolicy: options.retryPolicy ?? DEFAULT_RETRY_POLICY,
    logger,
    decoder: new Decoder({
      registry: config.schemaRegistry && new SchemaRegistryClient(config.schemaRegistry),
      plainJson: topicFilter(config.plainJsonTopics),
    }),
  });

  const stopWaits = new AbortController();
  const stopCalls = new AbortController();
  let consumer: RunningConsumer;
  try {
    consumer = await startConsumer({
      kafka,
      groupId: config.kafka.groupId,
      topics: rules.topics,
      fromBeginning: config.kafka.startFrom === 'earliest',
      logger,
      handle: (message, heartbeat) =>
        pipeline.handle(message, {
          stopSignal: stopWaits.signal,
          callSignal: stopCalls.signal,
          heartbeat,
        }),
      onCrash:
        options.onCrash ??
        ((error) => {
          logger.fatal({ err: error }, 'the Kafka consumer crashed and will not restart; exiting');
          process.exit(70);
        }),
    });
  } catch (error) {
    await deadLetters.disconnect();
    throw error;
  }

  let closing: Promise<void> | undefined;
  const close = async () => {
    logger.info('stopping: no new events are taken; in-flight deliveries may finish');
    stopWaits.abort();
    const grace = setTimeout(() => stopCalls.abort(), options.shutdownGraceMs ?? 10_000);
    try {
      await consumer.stop();
      await deadLetters.disconnect();
    } finally {
      clearTimeout(grace);
    }
    logger.info('stopped');
  };
  return {
    health,
    tokens,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
