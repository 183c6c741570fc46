import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import { BridgeError } from '../errors.js';
import type { Secret } from '../secret.js';
import type { Logger } from '../telemetry/logger.js';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How the bridge (consumer, dead-letter producer, replay) authenticates to Kafka and protects the connection. */
export interface KafkaSecurity {
  readonly protocol: 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
  /** Present with SSL and SASL_SSL. */
  readonly tls?: {
    /** PEM certificates to trust instead of the system's CAs. */
    readonly ca?: string;
    /** PEM client certificate and key, for brokers that require mutual TLS. */
    readonly cert?: string;
    readonly key?: Secret;
    readonly keyPassword?: Secret;
    /** Whether the broker's certificate must name the host connected to (on unless turned off). */
    readonly verifyHostname: boolean;
  };
  /** Present with SASL_PLAINTEXT and SASL_SSL. */
  readonly sasl?: {
    readonly mechanism: SaslMechanism;
    readonly username: string;
    readonly password: Secret;
  };
}

export interface KafkaConnectionOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger: Logger;
  readonly security?: KafkaSecurity;
}

/** One kafkajs client for the consumer and the dead-letter producer, logging through our logger. */
export function createKafka(options: KafkaConnectionOptions): Kafka {
  const log = options.logger.child({ component: 'kafkajs' });
  const verbose = log.isLevelEnabled('debug');
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    ...securityOptions(options.security),
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

/** kafkajs' `ssl` and `sasl` options from the configuration; secrets are revealed here and nowhere else. */
export function securityOptions(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (!security) return {};
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (security.tls) {
    const { ca, cert, key, keyPassword, verifyHostname } = security.tls;
    const tls: ConnectionOptions = {
      rejectUnauthorized: true,
      ...(ca !== undefined && { ca: [ca] }),
      ...(cert !== undefined && { cert }),
      ...(key !== undefined && { key: key.reveal() }),
      ...(keyPassword !== undefined && { passphrase: keyPassword.reveal() }),
      // The certificate chain is still verified; only the host name check is skipped.
      ...(!verifyHostname && { checkServerIdentity: () => undefined }),
    };
    out.ssl = tls;
  }
  if (security.sasl) {
    const { mechanism, username, password } = security.sasl;
    out.sasl = { mechanism, username, password: password.reveal() } as SASLOptions;
  }
  return out;
}

/**
 * Turns kafkajs' connection and authentication failures into errors an operator can act on. kafkajs messages name
 * brokers and mechanisms but never the password, so the first line of theirs is kept as the detail.
 */
export function kafkaStartupError(error: unknown, security: KafkaSecurity | undefined): unknown {
  if (!(error instanceof Error) || error instanceof BridgeError) return error;
  const detail = error.message.split('\n', 1)[0] ?? '';
  if (error.name === 'KafkaJSSASLAuthenticationError') {
    const who = security?.sasl
      ? ` for user "${security.sasl.username}" (${security.sasl.mechanism.toUpperCase()})`
      : '';
    return new BridgeError(
      'KAFKA_AUTH_FAILED',
      `Kafka refused the SASL credentials${who}: check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM (${detail})`,
    );
  }
  if (
    /certificate|self[- ]signed|SSL|TLS|ERR_TLS|altnames/i.test(
      `${error.message} ${String((error as { cause?: unknown }).cause)}`,
    )
  ) {
    return new BridgeError(
      'KAFKA_TLS_FAILED',
      `the TLS connection to Kafka failed: check KAFKA_SSL_CA_FILE, KAFKA_SSL_VERIFY_HOSTNAME and the broker address (${detail})`,
    );
  }
  if (error.name === 'KafkaJSConnectionError' || error.name === 'KafkaJSNumberOfRetriesExceeded') {
    return new BridgeError(
      'KAFKA_UNREACHABLE',
      `cannot connect to Kafka at KAFKA_BROKERS (protocol ${security?.protocol ?? 'PLAINTEXT'}): ${detail}`,
    );
  }
  return error;
}
