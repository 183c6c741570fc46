import type { ErrorCode } from '../errors.js';
import type { PauseReason } from '../health.js';
import type { Route } from './server.js';

/** What the probes read, gathered from the consumer and the pipeline's health. */
export interface ProbeState {
  /** The Kafka consumer died for good (the process is about to exit). */
  readonly crashed: Error | undefined;
  /** A member of the consumer group with an assignment. */
  readonly joined: boolean;
  readonly stopping: boolean;
  /** kafkajs lost the broker and restarts the consumer until it is back. */
  readonly disconnected: { readonly reason: string; readonly since: Date } | undefined;
  /** Delivery paused on a systemic failure. */
  readonly paused: PauseReason | undefined;
}

/**
 * Reasons /readyz gives besides the error code of a pause. Stable: alerts may match on them.
 * `NOT_IN_GROUP`: not (yet, or not while rebalancing) a member of the consumer group.
 * `STOPPING`: shutting down.
 * `KAFKA_UNREACHABLE` (an error code): kafkajs lost the broker and restarts the consumer until it answers again.
 */
export type ReadinessCode = ErrorCode | 'NOT_IN_GROUP' | 'STOPPING';

/** /healthz: the process is alive (the consumer has not crashed). /readyz: it is consuming (in the group, not paused). */
export function probeRoutes(state: () => ProbeState): Record<string, Route> {
  return {
    '/healthz': () => {
      const { crashed } = state();
      return crashed
        ? {
            status: 503,
            body: { status: 'crashed', code: 'KAFKA_CONSUMER_CRASHED', message: crashed.message },
          }
        : { status: 200, body: { status: 'alive' } };
    },
    '/readyz': () => {
      const { crashed, joined, stopping, disconnected, paused } = state();
      const notReady = (code: ReadinessCode, message: string, since?: Date) => ({
        status: 503,
        body: { ready: false, code, message, ...(since && { since: since.toISOString() }) },
      });
      if (crashed) return notReady('KAFKA_CONSUMER_CRASHED', crashed.message);
      if (stopping) return notReady('STOPPING', 'shutting down');
      if (disconnected) return notReady('KAFKA_UNREACHABLE', disconnected.reason, disconnected.since);
      if (paused) return notReady(paused.code, paused.message, paused.since);
      if (!joined)
        return notReady('NOT_IN_GROUP', 'not a member of the consumer group (joining or rebalancing)');
      return { status: 200, body: { ready: true } };
    },
  };
}
