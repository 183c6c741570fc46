import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SchemaRegistryClient } from '../kafka/schema-registry.js';
import { checkSchemaFields } from '../rules/schema-fields.js';
import { isBridgeError } from '../errors.js';
import type { GenesysRequest } from '../genesys/client.js';
import { decode } from '../kafka/decoder.js';
import { keyOf, type InboundMessage } from '../kafka/message.js';
import { plan } from '../pipeline.js';
import { RulesFileError, formatProblem, loadRulesFile } from '../rules/rules-file.js';
import type { RuleSet } from '../rules/rule-set.js';
import { templateScope } from '../rules/template.js';
import { EXIT } from './signals.js';

export const RULES_USAGE = `  rules check FILE [--registry URL]
                            Validate a rules file: every problem as file:line:column: message; exit 1 if any.
                            With --registry, also warn where a pattern or template names a field that the latest
                            schema of the topic's subject (<topic>-value) lacks.
                            Reads what the bridge reads: GEB_RULES_* for \${NAME}, RULES_TEMPLATES_DIR and
                            GENESYS_ALLOWED_HOSTS, so run it with the bridge's environment.
  rules test FILE --event EVENT.json [--topic T] [--key K] [--header name=value]...
                            Dry run, no network: print as JSON the request each matching rule would send
                            (--topic may be left out when the file names one topic).`;

export async function rulesCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'check') return check(rest);
  if (sub === 'test') return dryRunCommand(rest);
  process.stderr.write(`geb rules: expected "check" or "test"\n${RULES_USAGE}\n`);
  return EXIT.usage;
}

async function check(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { registry: { type: 'string' } },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`geb rules check: ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    process.stderr.write(`geb rules check: expected one FILE\n`);
    return EXIT.usage;
  }
  const rules = await load(file);
  if (!rules) return EXIT.failure;
  process.stdout.write(`${file}: ok (${rules.rules.length} rule(s), topics: ${rules.topics.join(', ')})\n`);
  const url = parsed.values.registry;
  if (url !== undefined) {
    // Warnings, not errors: events may carry the field under an older or newer schema, or a template may guard it.
    const report = await checkSchemaFields(await readFile(file, 'utf8'), new SchemaRegistryClient({ url }));
    for (const w of report.warnings) process.stdout.write(`warning: ${w.message}\n`);
    for (const subject of report.unchecked)
      process.stdout.write(`note: no schema for subject ${subject}: not checked\n`);
  }
  return EXIT.ok;
}

async function load(file: string): Promise<RuleSet | undefined> {
  try {
    return await loadRulesFile(file);
  } catch (error) {
    if (!(error instanceof RulesFileError)) throw error;
    for (const problem of error.problems) process.stderr.write(`${formatProblem(file, problem)}\n`);
    return undefined;
  }
}

export interface DryRunInput {
  readonly topic: string;
  readonly value: Buffer;
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
}

export interface DryRunResult {
  /** The keys appear only for a rule that declares its own, so that authors can see what they render. */
  readonly matches: {
    rule: string;
    orderingKey?: string;
    idempotencyKey?: string;
    request: GenesysRequest;
  }[];
  readonly errors: { rule: string | null; code: string; message: string }[];
}

/**
 * What the bridge would send for one record, through the pipeline's own plan (decode, match, keys, render, check),
 * without any network call.
 */
export function dryRun(rules: RuleSet, input: DryRunInput): DryRunResult {
  const message: InboundMessage = {
    topic: input.topic,
    partition: 0,
    offset: '0',
    key: input.key === undefined ? null : Buffer.from(input.key, 'utf8'),
    value: input.value,
    headers: { ...input.headers },
    timestamp: String(Date.now()),
  };
  const result: DryRunResult = { matches: [], errors: [] };
  let event: unknown;
  try {
    const decoded = decode(message);
    if (decoded.kind === 'tombstone') return result;
    event = decoded.event;
  } catch (error) {
    result.errors.push(errorOf(null, error));
    return result;
  }
  // The pipeline's plan, stage by stage: match → keys → render → check.
  const scope = templateScope(event);
  let matched;
  try {
    matched = plan.orderingKeys(plan.match(rules, message, event), scope, keyOf(message));
  } catch (error) {
    result.errors.push(errorOf(null, error));
    return result;
  }
  for (const m of matched) {
    const { rule } = m;
    try {
      const idempotencyKey = plan.idempotencyKey(m, scope);
      const { request } = plan.render(rule, scope);
      result.matches.push({
        rule: rule.name,
        ...(rule.orderingKey !== undefined && { orderingKey: m.orderingKey }),
        ...(idempotencyKey !== undefined && { idempotencyKey }),
        request,
      });
    } catch (error) {
      result.errors.push(errorOf(rule.name, error));
    }
  }
  return result;
}

function errorOf(rule: string | null, error: unknown) {
  return isBridgeError(error)
    ? { rule, code: error.code, message: error.message }
    : { rule, code: 'INTERNAL', message: String(error) };
}

async function dryRunCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      event: { type: 'string' },
      topic: { type: 'string' },
      key: { type: 'string' },
      header: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0 || values.event === undefined) {
    process.stderr.write(`geb rules test: expected FILE and --event EVENT.json\n${RULES_USAGE}\n`);
    return EXIT.usage;
  }
  const headers: Record<string, string | string[]> = {};
  for (const header of values.header ?? []) {
    const eq = header.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`geb rules test: --header "${header}" must be name=value\n`);
      return EXIT.usage;
    }
    const name = header.slice(0, eq);
    const value = header.slice(eq + 1);
    const previous = headers[name];
    headers[name] =
      previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  const rules = await load(file);
  if (!rules) return EXIT.failure;
  const topic = values.topic ?? (rules.topics.length === 1 ? rules.topics[0] : undefined);
  if (topic === undefined) {
    process.stderr.write(
      `geb rules test: the file names several topics (${rules.topics.join(', ')}); say which with --topic\n`,
    );
    return EXIT.usage;
  }
  let value: Buffer;
  try {
    value = await readFile(values.event);
  } catch (error) {
    process.stderr.write(
      `geb rules test: cannot read ${values.event} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})\n`,
    );
    return EXIT.usage;
  }
  const result = dryRun(rules, {
    topic,
    value,
    ...(values.key !== undefined && { key: values.key }),
    headers,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return EXIT.ok;
}
