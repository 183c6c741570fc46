import { setMaxListeners } from 'node:events';
import type { Config } from './config.js';
import { isBridgeError } from './errors.js';
import { createHttp } from './genesys/http.js';
import { GenesysConnections, createGenesysConnection } from './genesys/connections.js';
import type { TokenProvider } from './genesys/token-provider.js';
import { Health } from './health.js';
import { createKafka, kafkaStartupError } from './kafka/connection.js';
import { startConsumer, type RunningConsumer } from './kafka/consumer.js';
import { bearerProtected } from './http/auth.js';
import { probeRoutes } from './http/probes.js';
import { AdminServer } from './http/server.js';
import { DeadLetterWriter } from './kafka/dead-letter.js';
import { Decoder } from './kafka/decoder.js';
import { SchemaRegistryClient } from './kafka/schema-registry.js';
import { topicFilter } from './kafka/topic-filter.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './delivery/retry-policy.js';
import { Pipeline } from './pipeline.js';
import { DeliveryGate } from './delivery/ledger/gate.js';
import { deliveriesHandler } from './delivery/ledger/history.js';
import { openLedger } from './delivery/ledger/open.js';
import { startOutcomes } from './delivery/outcomes.js';
import type { Ledger } from './delivery/ledger/ledger.js';
import { loadRulesFile } from './rules/rules-file.js';
import { RulesReloader } from './rules/rules-reloader.js';
import { maskUrlCredentials } from './secret.js';
import { UNKEYED_RECIPIENT_HASH_WARNING, recipientHasher, type Logger } from './telemetry/logger.js';
import { Metrics } from './telemetry/metrics.js';

export interface BridgeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly retryPolicy?: RetryPolicy;
  /** How long in-flight Genesys calls may run on after a stop was asked for (default: SHUTDOWN_GRACE_MS). */
  readonly shutdownGraceMs?: number;
  /** After the grace, how long leaving Kafka and closing the rest may take (default: SHUTDOWN_CLOSE_TIMEOUT_MS). */
  readonly shutdownCloseTimeoutMs?: number;
  /** kafkajs gave up on the consumer: by default the process exits non-zero. */
  readonly onCrash?: (error: Error) => void;
}

export interface Bridge {
  readonly health: Health;
  readonly metrics: Metrics;
  readonly tokens: TokenProvider;
  /** Base URL of the admin HTTP server (/healthz, /readyz, /metrics). */
  readonly adminUrl: string;
  /** Reloads the rules file now (what SIGHUP does); resolves true when the new rules are in place. */
  reloadRules(): Promise<boolean>;
  /** The delivery history; also served on the admin server's /deliveries. */
  readonly ledger: Ledger;
  /**
   * Ordered and idempotent: stop fetching, let in-flight calls finish (up to the grace), commit, leave the group, close
   * the rest. Resolves within `shutdownBoundMs`: `clean` is false when a step did not finish within it (it is left
   * behind, and the process should exit rather than wait for it) or failed.
   */
  close(): Promise<{ readonly clean: boolean }>;
  /** The grace period plus the close timeout: the longest a stop takes. */
  readonly shutdownBoundMs: number;
}

/** Wires the stages together and joins the consumer group. The one place that owns the bridge's resources. */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const { config, logger } = options;
  const access = { templatesDir: config.rulesTemplatesDir, allowedHosts: config.genesysAllowedHosts };
  const rules = await loadRulesFile(config.rulesFile, process.env, access);
  logger.info(
    { rulesFile: config.rulesFile, rules: rules.rules.length, topics: rules.topics },
    'rules loaded',
  );

  if (config.recipientHashKey === undefined) logger.warn(UNKEYED_RECIPIENT_HASH_WARNING);
  const metrics = new Metrics();
  const http = createHttp({ requestTimeoutMs: config.genesys.requestTimeoutMs });
  const connectionDeps = { http, rateLimits: config.rateLimits, logger, metrics };
  const fallback = createGenesysConnection(config.genesys, connectionDeps);
  const { tokens, limiter } = fallback;
  const connections = new GenesysConnections(fallback, connectionDeps);
  const { rateLimits } = config;
  if (rateLimits.redisUrl) {
    // Not fatal: until Redis answers, deliveries retry (and pause if it stays away), as for Genesys itself.
    await limiter.ready().then(
      () => logger.info('shared rate budgets: Redis connected'),
      (error: unknown) => logger.error({ code: 'RATE_LIMIT_STORE_UNAVAILABLE' }, (error as Error).message),
    );
  }
  const health = new Health();
  health.onChange((paused) => {
    metrics.paused.reset();
    if (paused) metrics.paused.set({ code: paused.code }, 1);
  });

  // An early token request turns a wrong secret or region into a clear log line at start-up, not at the first event.
  // It is not fatal: the first event pauses on the same error and probes until it is fixed.
  tokens.getToken().then(
    () =>
      logger.info({ tokenUrl: maskUrlCredentials(config.genesys.tokenUrl) }, 'Genesys OAuth client accepted'),
    (error: unknown) => {
      if (isBridgeError(error)) {
        logger.error({ code: error.code }, error.message);
      } else {
        logger.error({ err: error }, 'token request failed');
      }
    },
  );

  for (const connection of rules.connections.values()) connections.connectionFor(connection);

  const retentionMs = config.ledger.retentionDays * DAY_MS;
  const ledger = await openLedger(config.ledger.url, { retentionMs });
  logger.info(
    { ledger: ledger.description, retentionDays: config.ledger.retentionDays },
    'delivery ledger open',
  );
  const expire = () =>
    ledger.expire(new Date(Date.now() - retentionMs)).then(
      (expired) => {
        if (expired > 0) logger.info({ expired }, 'expired old delivery records');
      },
      (error: unknown) => logger.warn({ err: error }, 'could not expire old delivery records'),
    );
  await expire();
  const expiry = setInterval(() => void expire(), EXPIRE_EVERY_MS);
  expiry.unref();

  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: config.kafka.clientId,
    logger,
    security: config.kafka.security,
  });
  const deadLetters = new DeadLetterWriter(kafka, config.deadLetterTopic);
  try {
    await deadLetters.connect();
  } catch (error) {
    clearInterval(expiry);
    await ledger.close();
    throw kafkaStartupError(error, config.kafka.security);
  }

  const reloader = new RulesReloader({
    file: config.rulesFile,
    initial: rules,
    logger: logger.child({ component: 'rules' }),
    watchIntervalMs: config.rulesWatchIntervalMs,
    subscribedTopics: rules.topics,
    access,
    onOutcome: (outcome) => metrics.rulesReloads.inc({ outcome }),
  });
  const onHangup = () => void reloader.reload('SIGHUP');
  // Status checks, outcome topic, suppression list (docs/deliveries.md).
  const outcomes = await startOutcomes({
    config,
    recipientHash: recipientHasher(config.recipientHashKey),
    kafka,
    ledger,
    logger,
    metrics,
    statusClientFor: (name) => {
      const rule = reloader.current.rules.find((r) => r.name === name);
      return rule && connections.connectionFor(rule.connection).statusClient;
    },
  });

  const pipeline = new Pipeline({
    rules: () => reloader.current,
    genesys: connections.fallback.sender,
    senderFor: (rule) => connections.senderFor(rule.connection),
    deadLetters,
    health,
    retryPolicy: options.retryPolicy ?? {
      ...DEFAULT_RETRY_POLICY,
      ...config.retry,
      pauseProbeMs: config.delivery.pauseProbeIntervalMs,
    },
    logger,
    metrics,
    groupId: config.kafka.groupId,
    ledger: new DeliveryGate(ledger, config.ledger.keyHeader),
    outcomes: outcomes.listener,
    guards: outcomes.guards,
    resolver: outcomes.resolver,
    decoder: new Decoder({
      registry: config.schemaRegistry && new SchemaRegistryClient(config.schemaRegistry),
      plainJson: topicFilter(config.plainJsonTopics),
      maxEventBytes: config.maxEventBytes,
    }),
    recipientHash: recipientHasher(config.recipientHashKey),
    prefilter: config.eventPrefilter,
  });

  const stopWaits = new AbortController();
  const stopCalls = new AbortController();
  // Every delivery in flight listens on both (its waits, its HTTP call): hundreds at once is expected, not a leak.
  setMaxListeners(0, stopWaits.signal, stopCalls.signal);
  let consumer: RunningConsumer | undefined;
  const history = deliveriesHandler(ledger);
  const admin = await AdminServer.start({
    host: config.admin.host,
    port: config.admin.port,
    routes: {
      ...probeRoutes(() => ({
        ...(consumer?.state() ?? {
          joined: false,
          stopping: false,
          crashed: undefined,
          disconnected: undefined,
        }),
        paused: health.paused,
      })),
      '/metrics': async () => {
        const { contentType, body } = await metrics.render();
        return { status: 200, body, contentType };
      },
      // The delivery history: GET /deliveries?event=TOPIC/PARTITION/OFFSET | key=K | rule=R [&since=1h]
      '/deliveries': bearerProtected(
        config.admin.token,
        // A query error is a 400 with { error }, as `geb deliveries show` reports it.
        async (request) => history(new URL(request.url ?? '/', 'http://admin')),
        { variable: 'ADMIN_TOKEN' },
      ),
    },
  }).catch(async (error: unknown) => {
    await deadLetters.disconnect();
    clearInterval(expiry);
    await ledger.close();
    throw error;
  });
  logger.info(
    { url: admin.url, deliveries: config.admin.token ? 'on (bearer token)' : 'off (ADMIN_TOKEN not set)' },
    'admin server listening (/healthz, /readyz, /metrics, /deliveries)',
  );

  try {
    consumer = await startConsumer({
      kafka,
      groupId: config.kafka.groupId,
      topics: rules.topics,
      fromBeginning: config.kafka.startFrom === 'earliest',
      sessionTimeoutMs: config.kafka.sessionTimeoutMs,
      logger,
      limits: {
        maxInFlight: config.delivery.maxInFlight,
        maxInFlightPerPartition: config.delivery.maxInFlightPerPartition,
        maxQueuedPerPartition: config.delivery.maxQueuedPerPartition,
      },
      commitIntervalMs: config.delivery.commitIntervalMs,
      health,
      metrics,
      prepare: (message, hooks) =>
        pipeline.prepare(message, {
          stopSignal: stopWaits.signal,
          callSignal: stopCalls.signal,
          heartbeat: hooks.heartbeat,
        }),
      onCrash:
        options.onCrash ??
        ((error) => {
          logger.fatal({ err: error }, 'the Kafka consumer crashed and will not restart; exiting');
          process.exit(70);
        }),
    });
  } catch (error) {
    await outcomes.close();
    await deadLetters.disconnect();
    await admin.close();
    clearInterval(expiry);
    await ledger.close();
    await limiter.close();
    await connections.close();
    throw kafkaStartupError(error, config.kafka.security);
  }
  const running = consumer;
  reloader.start();
  process.on('SIGHUP', onHangup);

  const graceMs = options.shutdownGraceMs ?? config.delivery.shutdownGraceMs;
  const closeTimeoutMs = options.shutdownCloseTimeoutMs ?? config.delivery.shutdownCloseTimeoutMs;
  let closing: Promise<{ clean: boolean }> | undefined;
  const close = async () => {
    logger.info('stopping: no new events are taken; in-flight deliveries may finish');
    const deadline = Date.now() + graceMs + closeTimeoutMs;
    const kafkaDeadline = deadline - Math.min(LOCAL_RESERVE_MS, closeTimeoutMs / 4);
    let clean = true;
    /**
     * Waits for one step of the stop until the deadline, then goes on without it: a broker that went away must not
     * hold the stop (kafkajs retries a commit or a LeaveGroup for minutes). The Kafka steps leave a reserve of the bound
     * to the local ones after them (a socket, a file, a pool: quick).
     */
    const step = async (what: string, work: () => Promise<unknown>, until: number) => {
      const ms = Math.max(until - Date.now(), 0);
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        work().then(
          () => 'done' as const,
          (error: unknown) => {
            logger.warn({ err: error, step: what }, 'a shutdown step failed; going on');
            return 'failed' as const;
          },
        ),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms))),
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout')
        logger.warn(
          { step: what, boundMs: graceMs + closeTimeoutMs },
          'shutdown bound reached: not waiting for this step',
        );
      if (outcome !== 'done') clean = false;
    };
    process.off('SIGHUP', onHangup);
    reloader.stop();
    stopWaits.abort();
    await step(
      'consumer',
      () =>
        running.stop({
          graceMs,
          unwindMs: Math.min(UNWIND_MS, closeTimeoutMs / 2),
          onGraceOver: () => stopCalls.abort(),
        }),
      kafkaDeadline,
    );
    stopCalls.abort();
    // Outcomes of the deliveries that just finished are flushed before the producers they share go.
    await step('outcome publisher', () => outcomes.close(), kafkaDeadline);
    await step('dead-letter producer', () => deadLetters.disconnect(), kafkaDeadline);
    await step('rate-limit store', () => limiter.close(), deadline);
    await step('Genesys connections', () => connections.close(), deadline);
    await step('admin server', () => admin.close(), deadline);
    clearInterval(expiry);
    // Last: in-flight deliveries record their outcome until the consumer has stopped.
    await step('ledger', () => ledger.close(), deadline);
    if (clean) logger.info('stopped');
    else logger.warn('stopped, but not cleanly: events not committed are redelivered on restart');
    return { clean };
  };
  return {
    health,
    metrics,
    tokens,
    adminUrl: admin.url,
    reloadRules: () => reloader.reload('asked'),
    ledger,
    shutdownBoundMs: graceMs + closeTimeoutMs,
    close() {
      closing ??= close();
      return closing;
    },
  };
}

const DAY_MS = 86_400_000;
/** After the grace, aborted deliveries get at most this long to unwind before the consumer leaves anyway. */
const UNWIND_MS = 5_000;
/** The part of the shutdown bound kept for closing local resources after leaving Kafka. */
const LOCAL_RESERVE_MS = 2_000;
const EXPIRE_EVERY_MS = 3_600_000;
