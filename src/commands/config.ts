import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config.js';
import { isBridgeError } from '../errors.js';
import { createHttp } from '../genesys/http.js';
import { TokenProvider } from '../genesys/token-provider.js';
import { createKafka, kafkaStartupError } from '../kafka/connection.js';
import { RulesFileError, loadRulesFile } from '../rules/rules-file.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const CONFIG_USAGE = `  config [--check]          Print the effective configuration, secrets redacted. With --check, also validate it:
                            the rules file, Kafka (reachable, authenticated, topics exist) and the Genesys token
                            endpoint, one line per check.`;

export async function configCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { check: { type: 'boolean', default: false } },
    strict: true,
  });
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return EXIT.config;
  }
  if (!values.check) {
    process.stdout.write(`${JSON.stringify(config, redactPem, 2)}\n`);
    return EXIT.ok;
  }
  const rules = await checkRules(config);
  const results = [rules.check, ...(await checkKafka(config, rules.topics)), await checkGenesys(config)];
  for (const r of results) process.stdout.write(`${r.ok ? '✔' : '✖'} ${r.line}\n`);
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.config;
}

interface Check {
  ok: boolean;
  line: string;
}

/** Secret values already serialise as `[redacted]`; certificates are shortened, being long rather than secret. */
function redactPem(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith('-----BEGIN')
    ? `[PEM, ${value.length} characters]`
    : value;
}

async function checkRules(config: Config): Promise<{ check: Check; topics: string[] }> {
  try {
    const rules = await loadRulesFile(config.rulesFile);
    const line = `rules file ${config.rulesFile}: ${rules.rules.length} rule(s) on ${rules.topics.length} topic(s)`;
    return { check: { ok: true, line }, topics: rules.topics };
  } catch (error) {
    const line =
      error instanceof RulesFileError
        ? error.message
        : `rules file ${config.rulesFile}: ${(error as Error).message}`;
    return { check: { ok: false, line }, topics: [] };
  }
}

async function checkKafka(config: Config, topics: readonly string[]): Promise<Check[]> {
  const logger = createLogger('silent');
  const kafka = createKafka({ ...config.kafka, logger, security: config.kafka.security });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    return [
      {
        ok: true,
        line: `Kafka ${config.kafka.brokers.join(',')} (${config.kafka.security.protocol}): connected`,
      },
      missing.length === 0
        ? { ok: true, line: `Kafka topics of the rules exist (${topics.length})` }
        : { ok: false, line: `Kafka topics missing: ${missing.join(', ')}` },
    ];
  } catch (error) {
    const described = kafkaStartupError(error, config.kafka.security);
    const message = isBridgeError(described)
      ? `${described.code}: ${described.message}`
      : (described as Error).message;
    return [{ ok: false, line: `Kafka ${config.kafka.brokers.join(',')}: ${message}` }];
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function checkGenesys(config: Config): Promise<Check> {
  const tokens = new TokenProvider({
    tokenUrl: config.genesys.tokenUrl,
    clientId: config.genesys.clientId,
    clientSecret: config.genesys.clientSecret,
    http: createHttp({ requestTimeoutMs: config.genesys.requestTimeoutMs }),
    logger: createLogger('silent'),
  });
  try {
    await tokens.getToken();
    return { ok: true, line: `Genesys token endpoint ${config.genesys.tokenUrl}: OAuth client accepted` };
  } catch (error) {
    const message = isBridgeError(error) ? `${error.code}: ${error.message}` : (error as Error).message;
    return { ok: false, line: `Genesys token endpoint: ${message}` };
  }
}
