import type { Kafka } from 'kafkajs';
import type { StatusClient } from '../genesys/status-client.js';
import { OutcomePublisher } from './outcome-publisher.js';
import type { Logger, RecipientHasher } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { Guards, type DeliveryGuards } from './guards.js';
import { InDoubtResolver } from './in-doubt-resolver.js';
import type { Ledger } from './ledger/ledger.js';
import { fanOut, type OutcomeListener } from './outcome-event.js';
import { StatusChecker } from './status-checker.js';
import { openSuppressions, suppressOnBounce, type SuppressionStore } from './suppressions.js';

/**
 * Closing the loop with Genesys, wired in one place: the status checks of accepted sends, the outcome topic, the
 * suppression list and the guards the pipeline consults before a claim. The bridge hands the pipeline `listener`
 * and `guards`, and closes this after the consumer stopped and before the ledger closes.
 */
export interface Outcomes {
  readonly listener: OutcomeListener;
  readonly guards: DeliveryGuards;
  readonly resolver: InDoubtResolver;
  readonly checker: StatusChecker | undefined;
  readonly publisher: OutcomePublisher | undefined;
  readonly suppressions: SuppressionStore | undefined;
  close(): Promise<void>;
}

/** STATUS_CHECK*, OUTCOME_TOPIC, SUPPRESSION_DAYS, RECONCILE_ANALYTICS_LAG_MS (see docs/configuration.md). */
export interface OutcomeSettings {
  readonly statusChecks: number;
  readonly statusCheckDelayMs: number;
  readonly statusCheckIntervalMs: number;
  /** Unset: outcomes are not published. */
  readonly topic: string | undefined;
  readonly suppressionDays: number;
  readonly reconcileAnalyticsLagMs: number;
}

export interface OutcomesDeps {
  /** The suppression list lives beside the ledger (LEDGER_URL). */
  readonly config: { readonly outcomes: OutcomeSettings; readonly ledger: { readonly url: string } };
  readonly kafka: Kafka;
  readonly ledger: Ledger;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The status client of a rule's connection, by rule name (the rule may have been reloaded away). */
  readonly statusClientFor: (rule: string) => StatusClient | undefined;
  readonly recipientHash: RecipientHasher;
}

export async function startOutcomes(deps: OutcomesDeps): Promise<Outcomes> {
  const { config, logger } = deps;
  const settings = config.outcomes;
  const log = logger.child({ component: 'outcomes' });
  const suppressions = settings.suppressionDays > 0 ? await openSuppressions(config.ledger.url) : undefined;
  let publisher: OutcomePublisher | undefined;
  if (settings.topic !== undefined && settings.topic !== '') {
    publisher = new OutcomePublisher(deps.kafka, settings.topic, log);
    try {
      await publisher.connect();
    } catch (error) {
      await suppressions?.close();
      throw error;
    }
    log.info({ outcomeTopic: settings.topic }, 'delivery outcomes are published');
  }
  const suppress = suppressions
    ? suppressOnBounce(suppressions, settings.suppressionDays, (error) =>
        log.warn({ err: error }, 'could not add to the suppression list'),
      )
    : undefined;
  const checker =
    settings.statusChecks > 0
      ? new StatusChecker({
          ledger: deps.ledger,
          clientFor: deps.statusClientFor,
          firstCheckAfterMs: settings.statusCheckDelayMs,
          checkEveryMs: settings.statusCheckIntervalMs,
          maxChecks: settings.statusChecks,
          logger: log,
          metrics: deps.metrics,
          onOutcome: fanOut(publisher?.listener, suppress),
        })
      : undefined;
  return {
    listener: fanOut(publisher?.listener, checker?.listener),
    guards: new Guards(suppressions),
    resolver: new InDoubtResolver({
      clientFor: deps.statusClientFor,
      recipientHash: deps.recipientHash,
      analyticsLagMs: settings.reconcileAnalyticsLagMs,
      // Every call of a crashed run (one file ledger, one process) was made before this process started.
      processStartMs: Math.round(performance.timeOrigin),
    }),
    checker,
    publisher,
    suppressions,
    async close() {
      await checker?.stop();
      await publisher?.close();
      await suppressions?.close();
    },
  };
}
