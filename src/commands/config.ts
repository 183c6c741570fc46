import { parseArgs } from 'node:util';
import {
  SETTINGS,
  SETTING_GROUPS,
  loadConfig,
  settingSources,
  type Config,
  type Setting,
  type SettingSource,
} from '../config.js';
import { isBridgeError } from '../errors.js';
import { createHttp } from '../genesys/http.js';
import { TokenProvider } from '../genesys/token-provider.js';
import { createKafka, kafkaStartupError } from '../kafka/connection.js';
import { RulesFileError, loadRulesFile } from '../rules/rules-file.js';
import { maskUrlCredentials } from '../secret.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const CONFIG_USAGE = `  config [--check|--json|--docs]
                            Print each setting by its variable name, with where its value came from (environment,
                            file, default); secrets and URL passwords masked. --json: the same as JSON. --check: also
                            validate the rules file, Kafka (reachable, authenticated, topics exist) and the Genesys
                            token endpoint, one line per check. --docs: print docs/configuration.md.`;

export async function configCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      check: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      docs: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.docs) {
    process.stdout.write(configurationDocs());
    return EXIT.ok;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return EXIT.config;
  }
  if (!values.check) {
    const shown = effectiveSettings();
    process.stdout.write(values.json ? `${JSON.stringify(shown, null, 2)}\n` : settingsText(shown));
    return EXIT.ok;
  }
  const rules = await checkRules(config);
  const results = [rules.check, ...(await checkKafka(config, rules.topics)), await checkGenesys(config)];
  // A URL setting (GENESYS_LOGIN_URL, a broker error quoting one) may carry a password in its user-info.
  for (const r of results) process.stdout.write(`${r.ok ? '✔' : '✖'} ${maskUrlCredentials(r.line)}\n`);
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.config;
}

interface Check {
  ok: boolean;
  line: string;
}

export interface ShownSetting {
  readonly name: string;
  readonly group: string;
  /** As it may be printed: secrets `[redacted]`, the user-info of any URL `***`; undefined when unset. */
  readonly value: string | undefined;
  readonly source: SettingSource;
}

/**
 * Every setting's raw value as the bridge reads it. Only values are shown, never a file's contents: the *_FILE
 * settings show their path, and a secret is `[redacted]` whatever it holds.
 */
export function effectiveSettings(env: NodeJS.ProcessEnv = process.env): ShownSetting[] {
  const sources = settingSources(env);
  return SETTINGS.map((setting) => {
    const source = sources.get(setting.name) ?? 'unset';
    const raw =
      source === 'environment'
        ? env[setting.name]?.trim()
        : source === 'default'
          ? setting.default
          : undefined;
    const value =
      source === 'unset'
        ? undefined
        : setting.kind === 'secret'
          ? '[redacted]'
          : maskUrlCredentials(raw ?? '');
    return { name: setting.name, group: SETTING_GROUPS[setting.group], value, source };
  });
}

function settingsText(shown: readonly ShownSetting[]): string {
  const lines: string[] = [];
  let group: string | undefined;
  for (const s of shown) {
    if (s.group !== group) {
      lines.push(...(group === undefined ? [] : ['']), `# ${s.group}`);
      group = s.group;
    }
    lines.push(s.value === undefined ? `# ${s.name} unset` : `${s.name}=${s.value}  # ${s.source}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What a setting accepts, for the docs' Values column. */
function accepts(setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
      return `whole number, ${setting.min ?? 0} to ${setting.max ?? Number.MAX_SAFE_INTEGER}`;
    case 'choice':
      return (setting.values ?? []).map((v) => `\`${v}\``).join(', ');
    case 'list':
      return 'comma-separated list';
    case 'url':
      return 'http(s) URL';
    case 'redis-url':
      return '`redis://` or `rediss://` URL';
    case 'path':
      return 'file path';
    case 'pem-file':
      return 'path of a PEM file';
    case 'secret':
      return `secret; or \`${setting.name}_FILE\`: a file holding it`;
    case 'text':
      return 'text';
  }
}

/** docs/configuration.md, generated from SETTINGS; test/config-docs.test.ts keeps the committed page equal to it. */
export function configurationDocs(): string {
  const out: string[] = [
    '# Configuration',
    '',
    '<!-- Generated from the SETTINGS catalogue in src/config.ts by `npm run docs:config`: edit there, not here. -->',
    '',
    'The bridge reads environment variables only, once at start-up (the rules file is reloaded on change; see',
    '[rules.md](rules.md)). Every problem is reported at once, naming the variable, and `geb run` exits with code 78.',
    '',
    '- `geb config` prints each variable with its effective value and where it came from (`environment`, `file`,',
    '  `default`); secrets show as `[redacted]` and the user name and password inside any URL as `***`.',
    '- `geb config --check` also checks the rules file, Kafka and the Genesys token endpoint, one line each.',
    '- A secret may come from a file instead: `<NAME>_FILE` names it (Docker and Kubernetes secrets). A leading UTF-8',
    '  BOM and trailing spaces and newlines are removed; an empty file is an error. Setting both is an error.',
    '- Durations are in milliseconds (`_MS`) unless the name says otherwise (`_DAYS`, `_BYTES`).',
    '- Tracing takes the standard OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,',
    '  `OTEL_SDK_DISABLED`…), read by the OpenTelemetry SDK itself: see [tracing.md](tracing.md#configuration).',
    '',
  ];
  for (const [group, title] of Object.entries(SETTING_GROUPS)) {
    const rows = SETTINGS.filter((s) => s.group === group);
    if (rows.length === 0) continue;
    out.push(`## ${title}`, '', '| Variable | Values | Default | Description |', '| --- | --- | --- | --- |');
    for (const s of rows) {
      const fallback = s.required ? '**required**' : s.default === undefined ? 'unset' : `\`${s.default}\``;
      out.push(`| \`${s.name}\` | ${accepts(s)} | ${fallback} | ${s.description.replace(/\|/g, '\\|')} |`);
    }
    out.push('');
  }
  return out.join('\n');
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
