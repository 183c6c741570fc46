import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SchemaRegistryClient } from '../kafka/schema-registry.js';
import {
  checkSchemaFields,
  shapeOfJsonSchema,
  shapeOfSamples,
  type SchemaFieldReport,
  type Shape,
} from '../rules/schema-fields.js';
import { RulesFileError, codeFrame, formatProblem, loadRulesFile } from '../rules/rules-file.js';
import { closest } from '../rules/suggest.js';
import type { RuleSet } from '../rules/rule-set.js';
import { evaluate, fieldLocator, patternsOf, type Evaluation } from './rules-evaluate.js';
import { expandGlob, runCaseFiles } from './rules-cases.js';
import { recordsOf, type TestRecord } from './rules-inputs.js';
import { EXIT } from './signals.js';

export { dryRun, evaluate, type DryRunInput, type DryRunResult } from './rules-evaluate.js';

export const RULES_USAGE = `  rules check FILE [--registry URL] [--schema TOPIC=SCHEMA.json]... [--samples [TOPIC=]EVENTS.json]... [--strict]
                            Validate a rules file: every problem as file:line:column: message; exit 1 if any.
                            With --registry (the latest schema of <topic>-value), --schema (a JSON Schema file for
                            a topic) or --samples (sample events, alone or in {key, value} envelopes), also warn,
                            at file:line:column, where a pattern or template names a field the events lack;
                            --strict makes those warnings fail (exit 1).
                            Reads what the bridge reads: GEB_RULES_* for \${NAME}, RULES_TEMPLATES_DIR and
                            GENESYS_ALLOWED_HOSTS, so run it with the bridge's environment.
  rules test FILE --event EVENTS.json [--topic T] [--key K] [--header name=value]... [--explain]
                            Dry run, no network: print as JSON the request each matching rule would send. EVENTS.json
                            holds one event, a list of events (or one a line), or {key, value, headers} records.
                            Exit 1 on any error (decode, missing template field, limits). --explain says for each
                            rule why it matched or not (on stderr). --topic may be left out when the file names one.
  rules test [FILE] --cases GLOB [--cases GLOB]...
                            Run committed test cases (YAML: input event, expected requests, no send or errors);
                            GLOB is relative to the working folder ('tests/**/*.yaml'). Exit 1 if any case fails.`;

export async function rulesCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'check') return check(rest);
  if (sub === 'test') return testCommand(rest);
  process.stderr.write(`geb rules: expected "check" or "test"\n${RULES_USAGE}\n`);
  return EXIT.usage;
}

async function check(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        registry: { type: 'string' },
        schema: { type: 'string', multiple: true },
        samples: { type: 'string', multiple: true },
        strict: { type: 'boolean' },
      },
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
  const { registry: url, schema = [], samples = [] } = parsed.values;
  let shapes: Map<string, Shape> | undefined;
  let sampled: Shape | undefined;
  try {
    shapes = await givenShapes(schema, samples);
    sampled = shapes.get('');
    shapes.delete('');
  } catch (error) {
    process.stderr.write(`geb rules check: ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  if (url === undefined && schema.length === 0 && samples.length === 0) return EXIT.ok;
  const registry = url === undefined ? undefined : new SchemaRegistryClient({ url });
  // Warnings, not errors (unless --strict): events may carry the field under an older or newer schema, or a template
  // may guard it.
  const report: SchemaFieldReport = await checkSchemaFields(
    await readFile(file, 'utf8'),
    async (topic) => {
      const given = shapes.get(topic) ?? sampled;
      if (given !== undefined)
        return {
          shape: given,
          source: shapes.has(topic) ? `the JSON Schema given for ${topic}` : `the sample set for ${topic}`,
        };
      const latest = registry ? await registry.getLatest(`${topic}-value`) : undefined;
      return latest ? { schema: latest, source: `the latest schema of ${topic}-value` } : undefined;
    },
    file,
  );
  for (const w of report.warnings) {
    process.stdout.write(
      `${w.location}warning: ${w.message}${w.suggestion === undefined ? '' : `; did you mean "${w.suggestion}"?`}\n`,
    );
  }
  for (const topic of report.unchecked) {
    process.stdout.write(
      registry && !shapes.has(topic) && sampled === undefined
        ? `note: no schema for subject ${topic}-value: not checked\n`
        : `note: no schema or samples for topic ${topic}: not checked\n`,
    );
  }
  return parsed.values.strict === true && report.warnings.length > 0 ? EXIT.failure : EXIT.ok;
}

/** `--schema TOPIC=FILE` and `--samples [TOPIC=]FILE` as shapes by topic ('' for samples of every topic). */
async function givenShapes(
  schemas: readonly string[],
  samples: readonly string[],
): Promise<Map<string, Shape>> {
  const shapes = new Map<string, Shape>();
  for (const spec of schemas) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`--schema "${spec}" must be TOPIC=SCHEMA.json`);
    const path = spec.slice(eq + 1);
    let schema: unknown;
    try {
      schema = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new Error(`--schema ${path}: ${readProblem(error)}`);
    }
    shapes.set(spec.slice(0, eq), shapeOfJsonSchema(schema));
  }
  const events = new Map<string, unknown[]>();
  for (const spec of samples) {
    const eq = spec.indexOf('=');
    const [topic, path] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : ['', spec];
    let records: TestRecord[];
    try {
      records = recordsOf(await readFile(path), path);
    } catch (error) {
      throw new Error(`--samples ${path}: ${readProblem(error)}`);
    }
    for (const record of records) {
      const list = events.get(record.topic ?? topic) ?? [];
      try {
        list.push(JSON.parse(record.value?.toString('utf8') ?? 'null'));
      } catch {
        throw new Error(`--samples ${path}: ${record.label} is not JSON`);
      }
      events.set(record.topic ?? topic, list);
    }
  }
  for (const [topic, list] of events) if (!shapes.has(topic)) shapes.set(topic, shapeOfSamples(list));
  return shapes;
}

function readProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `cannot read (${code})` : (error as Error).message;
}

async function load(file: string): Promise<RuleSet | undefined> {
  try {
    return await loadRulesFile(file);
  } catch (error) {
    if (!(error instanceof RulesFileError)) throw error;
    const text = await readFile(file, 'utf8').catch(() => undefined);
    for (const problem of error.problems) {
      process.stderr.write(`${formatProblem(file, problem)}\n`);
      // Under the one-line form (which editors and CI annotations read), the lines around it for a person.
      if (text !== undefined && problem.line !== undefined) {
        process.stderr.write(`${codeFrame(text, problem.line, problem.column ?? 1)}\n`);
      }
    }
    return undefined;
  }
}

async function testCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        event: { type: 'string' },
        cases: { type: 'string', multiple: true },
        topic: { type: 'string' },
        key: { type: 'string' },
        header: { type: 'string', multiple: true },
        explain: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`geb rules test: ${(error as Error).message}\n${RULES_USAGE}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [file, ...extra] = positionals;
  if (values.cases !== undefined) {
    if (extra.length > 0 || values.event !== undefined) {
      process.stderr.write(`geb rules test: --cases takes at most one FILE and no --event\n${RULES_USAGE}\n`);
      return EXIT.usage;
    }
    return casesCommand(values.cases, file);
  }
  if (file === undefined || extra.length > 0 || values.event === undefined) {
    process.stderr.write(
      `geb rules test: expected FILE and --event EVENTS.json, or --cases GLOB\n${RULES_USAGE}\n`,
    );
    return EXIT.usage;
  }
  const headers = headersOf(values.header ?? []);
  if (headers === undefined) return EXIT.usage;
  const rules = await load(file);
  if (!rules) return EXIT.failure;
  let records: TestRecord[];
  try {
    records = recordsOf(await readFile(values.event), values.event);
  } catch (error) {
    process.stderr.write(`geb rules test: ${values.event}: ${readProblem(error)}\n`);
    return EXIT.usage;
  }
  const defaultTopic = values.topic ?? (rules.topics.length === 1 ? rules.topics[0] : undefined);
  if (defaultTopic === undefined && records.some((r) => r.topic === undefined)) {
    process.stderr.write(
      `geb rules test: the file names several topics (${rules.topics.join(', ')}); say which with --topic\n`,
    );
    return EXIT.usage;
  }
  const rulesText = await readFile(file, 'utf8');
  const patterns = patternsOf(rulesText);
  const locate = fieldLocator(rulesText, file);
  const results: (Evaluation & { label: string; topic: string; key?: string })[] = [];
  for (const record of records) {
    const topic = record.topic ?? defaultTopic ?? ''; // defaultTopic is known for records without a topic
    const key = record.key ?? values.key;
    const result = evaluate(
      rules,
      {
        topic,
        value: record.value,
        ...(key !== undefined && { key }),
        headers: { ...headers, ...record.headers },
      },
      patterns,
    );
    results.push({ ...result, label: record.label, topic, ...(key !== undefined && { key }) });
  }
  report(results, records.length > 1, rules.topics, locate, values.explain === true);
  printResults(results, records.length > 1);
  return results.some((r) => r.errors.length > 0) ? EXIT.failure : EXIT.ok;
}

/** --header name=value, repeated: a header given twice is a list. Undefined (said on stderr) when one is malformed. */
function headersOf(given: readonly string[]): Record<string, string | string[]> | undefined {
  const headers: Record<string, string | string[]> = {};
  for (const header of given) {
    const eq = header.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`geb rules test: --header "${header}" must be name=value\n`);
      return undefined;
    }
    const name = header.slice(0, eq);
    const value = header.slice(eq + 1);
    const previous = headers[name];
    headers[name] =
      previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return headers;
}

/** What the dry run found, on stderr: unknown topics, tombstones, errors at their place in the rules file, no-matches. */
function report(
  results: readonly (Evaluation & { label: string; topic: string })[],
  several: boolean,
  topics: readonly string[],
  locate: (rule: string | null, field: string | undefined) => string,
  explain: boolean,
): void {
  const warnedTopics = new Set<string>();
  for (const r of results) {
    const where = several ? `${r.label}: ` : '';
    if (r.topicUnknown) {
      if (!warnedTopics.has(r.topic)) {
        const near = closest(r.topic, topics);
        process.stderr.write(
          `warning: no rule reads topic "${r.topic}" (the file's topics: ${topics.join(', ')})${
            near ? `; did you mean "${near}"?` : ''
          }\n`,
        );
      }
      warnedTopics.add(r.topic);
      continue;
    }
    if (r.tombstone) {
      process.stderr.write(`${where}note: a tombstone (no value): the bridge skips it\n`);
      continue;
    }
    for (const e of r.errors) {
      // At the template's place in the rules file, where a fix would go (editors jump to file:line:col).
      const at = locate(e.rule, /^([\w.[\]-]+): /.exec(e.message)?.[1]);
      process.stderr.write(`${at}error: ${where}${e.rule ?? '(event)'}: ${e.code}: ${e.message}\n`);
    }
    const nothing = r.matches.length === 0 && r.errors.length === 0;
    if (nothing) process.stderr.write(`${where}note: no rule matched this event; sends nothing\n`);
    if (explain || nothing) {
      for (const x of r.explanations) {
        if (!x.matched) process.stderr.write(`${where}  ${x.rule}: no match: ${x.reason ?? '?'}\n`);
        else if (explain) {
          process.stderr.write(
            `${where}  ${x.rule}: matched${
              x.missing.length === 0
                ? ''
                : `, but the event has no value for: ${x.missing.map((m) => `${m.variable} (${m.field})`).join(', ')}`
            }\n`,
          );
        }
      }
    }
  }
}

/** The dry run's result as JSON on stdout: one object for one event, a list naming each event for several. */
function printResults(
  results: readonly (Evaluation & { label: string; key?: string })[],
  several: boolean,
): void {
  const printable = results.map(({ matches, errors, label, key }) =>
    several ? { event: label, ...(key !== undefined && { key }), matches, errors } : { matches, errors },
  );
  process.stdout.write(`${JSON.stringify(several ? printable : printable[0], null, 2)}\n`);
}

async function casesCommand(globs: readonly string[], rulesFile: string | undefined): Promise<number> {
  const files = [...new Set(globs.flatMap((g) => expandGlob(g, process.cwd())))].sort();
  if (files.length === 0) {
    process.stderr.write(`geb rules test: no case file matches ${globs.map((g) => `'${g}'`).join(', ')}\n`);
    return EXIT.failure;
  }
  const { failed } = await runCaseFiles(files, rulesFile, (line) => process.stdout.write(`${line}\n`));
  return failed > 0 ? EXIT.failure : EXIT.ok;
}
