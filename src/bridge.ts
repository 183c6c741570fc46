import { setMaxListeners } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Config } from './config.js';
import { isBridgeError } from './errors.js';
import { createHttp } from './genesys/http.js';
import { GenesysConnections, createGenesysConnection } from './genesys/connections.js';
import type { TokenProvider } from './genesys/token-provider.js';
import { Health } from './health.js';
import type { Kafka } from 'kafkajs';
import { createKafka, kafkaStartupError } from './kafka/connection.js';
import { startConsumer, type RunningConsumer } from './kafka/consumer.js';
import { bearerProtected } from './http/auth.js';
import { probeRoutes, type ProbeState } from './http/probes.js';
import { AdminServer } from './http/server.js';
import { DeadLetterWriter } from './kafka/dead-letter.js';
import { Decoder } from './kafka/decoder.js';
import { SchemaRegistryClient } from './kafka/schema-registry.js';
import { topicFilter } from './kafka/topic-filter.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './delivery/retry-policy.js';
import { Pipeline, type EventContext, type PipelineDeps } from './pipeline.js';
import type { InboundMessage } from './kafka/message.js';
import { DeliveryRunner, type RunnerOptions } from './delivery/runner.js';
import { DeliveryGate } from './delivery/ledger/gate.js';
import { deliveriesHandler } from './delivery/ledger/history.js';
import { openLedger } from './delivery/ledger/open.js';
import { startOutcomes, type Outcomes } from './delivery/outcomes.js';
import type { Ledger } from './delivery/ledger/ledger.js';
import { loadRulesFile, type RulesFileAccess } from './rules/rules-file.js';
import type { RuleSet } from './rules/rule-set.js';
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
  const { connections, tokens, limiter } = await startGenesys(config, logger, metrics, rules);
  const health = pauseState(metrics);

  const { ledger, expiry } = await openLedgerWithExpiry(config, logger);

  const { kafka, deadLetters } = await connectKafka(config, logger, () => {
    clearInterval(expiry);
    return ledger.close();
  });

  const reloader = createReloader(config, rules, access, logger, metrics);
  const onHangup = () => void reloader.reload('SIGHUP');
  // Status checks, outcome topic, suppression list (docs/deliveries.md).
  const outcomes = await startOutcomesOf(options, metrics, { kafka, ledger, connections, reloader });

  const pipeline = createPipeline(options, {
    rules: () => reloader.current,
    connections,
    deadLetters,
    health,
    metrics,
    ledger,
    outcomes,
  });

  const { stopWaits, stopCalls, prepare } = preparing(pipeline);
  let consumer: RunningConsumer | undefined;
  const state = () => ({ ...(consumer?.state() ?? NOT_JOINED), paused: health.paused });
  const admin = await startAdmin(config, logger, adminRoutes(config, metrics, state, ledger), async () => {
    await deadLetters.disconnect();
    clearInterval(expiry);
    await ledger.close();
  });

  try {
    consumer = await startEngine(options, kafka, rules.topics, { health, metrics, prepare });
  } catch (error) {
    for (const undo of [() => deadLetters.disconnect(), () => admin.close(), () => ledger.close()])
      await undo();
    clearInterval(expiry);
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
  const close = () => {
    logger.info('stopping: no new events are taken; in-flight deliveries may finish');
    process.off('SIGHUP', onHangup);
    reloader.stop();
    stopWaits.abort();
    const unwindMs = Math.min(UNWIND_MS, closeTimeoutMs / 2);
    const consumerStop = () => running.stop({ graceMs, unwindMs, onGraceOver: () => stopCalls.abort() });
    const resources = { stopCalls, outcomes, deadLetters, limiter, connections, admin, expiry, ledger };
    return shutDown(logger, graceMs, closeTimeoutMs, stopSteps(consumerStop, resources));
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

/** The fallback Genesys connection (GENESYS_*) and the rules file's own, with their token providers and budgets. */
async function startGenesys(config: Config, logger: Logger, metrics: Metrics, rules: RuleSet) {
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
  return { connections, tokens, limiter };
}

/**
 * The pipeline's prepare as the runner calls it, with the two stops every event listens to: `stopWaits` aborts waits
 * (backoff, pause probes) at once, `stopCalls` aborts Genesys calls after the grace.
 */
function preparing(pipeline: Pipeline) {
  const stopWaits = new AbortController();
  const stopCalls = new AbortController();
  // Every delivery in flight listens on both (its waits, its HTTP call): hundreds at once is expected, not a leak.
  setMaxListeners(0, stopWaits.signal, stopCalls.signal);
  // The consumer hands one `waits` per fetched batch: its messages share one context (not one object per message,
  // on a path where most messages cost well under a microsecond).
  let lastWaits: Parameters<RunnerOptions<InboundMessage>['prepare']>[1] | undefined;
  let context: EventContext | undefined;
  const prepare: RunnerOptions<InboundMessage>['prepare'] = (message, waits) => {
    if (waits !== lastWaits || context === undefined) {
      lastWaits = waits;
      context = { waitSignal: stopWaits.signal, callSignal: stopCalls.signal, heartbeat: waits.heartbeat };
    }
    return pipeline.prepare(message, context);
  };
  return { stopWaits, stopCalls, prepare };
}

/** Whether delivery is paused (a systemic failure), mirrored in the geb_paused metric. */
function pauseState(metrics: Metrics): Health {
  const health = new Health();
  health.onChange((paused) => {
    metrics.paused.reset();
    if (paused) metrics.paused.set({ code: paused.code }, 1);
  });
  return health;
}

/** The delivery ledger, with its records past LEDGER_RETENTION_DAYS expired now and every hour. */
async function openLedgerWithExpiry(config: Config, logger: Logger) {
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
  return { ledger, expiry };
}

/**
 * The stop's steps in order, each bounded: the whole takes at most the grace plus the close timeout. The Kafka steps
 * leave a reserve of the bound to the local ones after them.
 */
async function shutDown(
  logger: Logger,
  graceMs: number,
  closeTimeoutMs: number,
  steps: readonly ShutdownStep[],
): Promise<{ clean: boolean }> {
  const deadline = Date.now() + graceMs + closeTimeoutMs;
  const kafkaDeadline = deadline - Math.min(LOCAL_RESERVE_MS, closeTimeoutMs / 4);
  let clean = true;
  for (const [what, kind, work] of steps) {
    const until = kind === 'kafka' ? kafkaDeadline : deadline;
    if (!(await shutdownStep(logger, what, work, until, graceMs + closeTimeoutMs))) clean = false;
  }
  if (clean) logger.info('stopped');
  else logger.warn('stopped, but not cleanly: events not committed are redelivered on restart');
  return { clean };
}

/**
 * Waits for one step of the stop until the deadline, then goes on without it: a broker that went away must not hold
 * the stop (kafkajs retries a commit or a LeaveGroup for minutes). The Kafka steps leave a reserve of the bound to the
 * local ones after them (a socket, a file, a pool: quick). Resolves whether the step finished well.
 */
async function shutdownStep(
  logger: Logger,
  what: string,
  work: () => Promise<unknown>,
  until: number,
  boundMs: number,
): Promise<boolean> {
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
    logger.warn({ step: what, boundMs }, 'shutdown bound reached: not waiting for this step');
  return outcome === 'done';
}

/** The admin server's routes: probes, metrics, and the delivery history behind ADMIN_TOKEN. */
function adminRoutes(config: Config, metrics: Metrics, state: () => ProbeState, ledger: Ledger) {
  const history = deliveriesHandler(ledger);
  return {
    ...probeRoutes(state),
    '/metrics': async () => {
      const { contentType, body } = await metrics.render();
      return { status: 200, body, contentType };
    },
    // The delivery history: GET /deliveries?event=TOPIC/PARTITION/OFFSET | key=K | rule=R [&since=1h]
    '/deliveries': bearerProtected(
      config.admin.token,
      // A query error is a 400 with { error }, as `geb deliveries show` reports it.
      async (request: IncomingMessage) => history(new URL(request.url ?? '/', 'http://admin')),
      { variable: 'ADMIN_TOKEN' },
    ),
  };
}

const NOT_JOINED = { joined: false, stopping: false, crashed: undefined, disconnected: undefined } as const;

/** The pipeline with its stages: the rules of the moment, the Genesys senders, the ledger, the decoder. */
function createPipeline(
  options: BridgeOptions,
  parts: Pick<PipelineDeps, 'rules' | 'deadLetters' | 'health' | 'metrics'> & {
    readonly connections: GenesysConnections;
    readonly ledger: Ledger;
    readonly outcomes: Outcomes;
  },
): Pipeline {
  const { config, logger } = options;
  const { connections, deadLetters, health, metrics, ledger, outcomes } = parts;
  return new Pipeline({
    rules: parts.rules,
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
}

/** The Kafka client and the dead-letter producer; `undo` closes what was opened before, when the broker fails. */
async function connectKafka(config: Config, logger: Logger, undo: () => Promise<void>) {
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
    await undo();
    throw kafkaStartupError(error, config.kafka.security);
  }
  return { kafka, deadLetters };
}

/** The delivery runner and the Kafka consumer that feeds it. */
async function startEngine(
  options: BridgeOptions,
  kafka: Kafka,
  topics: readonly string[],
  parts: { health: Health; metrics: Metrics; prepare: RunnerOptions<InboundMessage>['prepare'] },
): Promise<RunningConsumer> {
  const { config, logger } = options;
  const onCrash =
    options.onCrash ??
    ((error: Error) => {
      logger.fatal({ err: error }, 'the Kafka consumer crashed and will not restart; exiting');
      process.exit(70);
    });
  const { delivery } = config;
  const runner = new DeliveryRunner<InboundMessage>({
    limits: {
      maxInFlight: delivery.maxInFlight,
      maxInFlightPerPartition: delivery.maxInFlightPerPartition,
      maxQueuedPerPartition: delivery.maxQueuedPerPartition,
    },
    commitIntervalMs: delivery.commitIntervalMs,
    health: parts.health,
    logger,
    prepare: parts.prepare,
    onCrash,
  });
  return startConsumer({
    kafka,
    groupId: config.kafka.groupId,
    topics,
    fromBeginning: config.kafka.startFrom === 'earliest',
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    logger,
    metrics: parts.metrics,
    intake: runner,
    onCrash,
  });
}

/** The admin HTTP server; `undo` closes what was opened before, when it cannot listen. */
async function startAdmin(
  config: Config,
  logger: Logger,
  routes: ReturnType<typeof adminRoutes>,
  undo: () => Promise<void>,
): Promise<AdminServer> {
  const admin = await AdminServer.start({ host: config.admin.host, port: config.admin.port, routes }).catch(
    async (error: unknown) => {
      await undo();
      throw error;
    },
  );
  logger.info(
    { url: admin.url, deliveries: config.admin.token ? 'on (bearer token)' : 'off (ADMIN_TOKEN not set)' },
    'admin server listening (/healthz, /readyz, /metrics, /deliveries)',
  );
  return admin;
}

/** Reloads the rules file on SIGHUP, on `reloadRules()` and, with RULES_WATCH_INTERVAL_MS, when it changes. */
function createReloader(
  config: Config,
  rules: RuleSet,
  access: RulesFileAccess,
  logger: Logger,
  metrics: Metrics,
): RulesReloader {
  return new RulesReloader({
    file: config.rulesFile,
    initial: rules,
    logger: logger.child({ component: 'rules' }),
    watchIntervalMs: config.rulesWatchIntervalMs,
    subscribedTopics: rules.topics,
    access,
    onOutcome: (outcome) => metrics.rulesReloads.inc({ outcome }),
  });
}

/** What the stop closes, in order: Kafka first (the consumer commits its last watermark), the ledger last. */
function stopSteps(
  consumerStop: () => Promise<void>,
  r: {
    stopCalls: AbortController;
    outcomes: Outcomes;
    deadLetters: DeadLetterWriter;
    limiter: { close(): Promise<void> };
    connections: GenesysConnections;
    admin: AdminServer;
    expiry: NodeJS.Timeout;
    ledger: Ledger;
  },
): ShutdownStep[] {
  const { stopCalls, outcomes, deadLetters, limiter, connections, admin, expiry, ledger } = r;
  return [
    ['consumer', 'kafka', consumerStop],
    // Outcomes of the deliveries that just finished are flushed before the producers they share go.
    [
      'outcome publisher',
      'kafka',
      () => {
        stopCalls.abort();
        return outcomes.close();
      },
    ],
    ['dead-letter producer', 'kafka', () => deadLetters.disconnect()],
    ['rate-limit store', 'local', () => limiter.close()],
    ['Genesys connections', 'local', () => connections.close()],
    ['admin server', 'local', () => admin.close()],
    // Last: in-flight deliveries record their outcome until the consumer has stopped.
    [
      'ledger',
      'local',
      () => {
        clearInterval(expiry);
        return ledger.close();
      },
    ],
  ];
}

type ShutdownStep = readonly [what: string, kind: 'kafka' | 'local', work: () => Promise<unknown>];

/** The outcome side: status checks through each rule's connection, the outcome topic, the suppression list. */
function startOutcomesOf(
  options: BridgeOptions,
  metrics: Metrics,
  parts: { kafka: Kafka; ledger: Ledger; connections: GenesysConnections; reloader: RulesReloader },
): Promise<Outcomes> {
  const { config, logger } = options;
  const { kafka, ledger, connections, reloader } = parts;
  return startOutcomes({
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
}

const DAY_MS = 86_400_000;
/** After the grace, aborted deliveries get at most this long to unwind before the consumer leaves anyway. */
const UNWIND_MS = 5_000;
/** The part of the shutdown bound kept for closing local resources after leaving Kafka. */
const LOCAL_RESERVE_MS = 2_000;
const EXPIRE_EVERY_MS = 3_600_000;
