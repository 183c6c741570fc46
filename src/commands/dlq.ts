import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadKafkaConnectionConfig } from '../config.js';
import { createKafka } from '../kafka/connection.js';
import { DEAD_LETTER_HEADERS } from '../kafka/dead-letter.js';
import {
  DeadLetterTopicMissingError,
  readDeadLetters,
  type DeadLetterRecord,
} from '../kafka/dead-letter-read.js';
import { replayDeadLetters } from '../kafka/dead-letter-replay.js';
import { createLogger } from '../telemetry/logger.js';
import { EXIT } from './signals.js';

export const DLQ_USAGE = `  dlq show --topic DLQ [--limit N] [--show-bodies] [--json]
                            The newest N (default 20) dead-lettered events, newest first, each with its reason:
                            code, stage, rule, message, source event, key, trace id. Bodies and the producer's
                            header values are masked (size and hash) unless --show-bodies is given.
  dlq replay --topic DLQ [--code CODE] [--rule NAME] [--to TOPIC]
                            Republish dead-lettered events to their source topic (or --to) with their original
                            key, value and headers, then exit. --code / --rule pick by reason. Each dead letter is
                            replayed for its own rule only, under its original idempotency keys: the event's rules
                            that sent are not sent again. Needs KAFKA_BROKERS (and the KAFKA_SECURITY_PROTOCOL settings of a secured cluster).`;

export async function dlqCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'show') return dlqShow(rest, env);
  if (sub !== 'replay') {
    process.stderr.write(`geb dlq: unknown subcommand "${sub ?? ''}"\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        topic: { type: 'string' },
        code: { type: 'string' },
        rule: { type: 'string' },
        to: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`geb dlq replay: ${(error as Error).message}\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  if (!values.topic) {
    process.stderr.write(`geb dlq replay: --topic is required\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  let connection;
  try {
    connection = loadKafkaConnectionConfig(env);
  } catch (error) {
    process.stderr.write(`geb dlq replay: ${(error as Error).message}\n`);
    return EXIT.config;
  }
  const logger = createLogger('warn');
  // The same TLS and SASL settings as `geb run`: a dead-letter topic lives on the same secured cluster.
  const kafka = createKafka({ ...connection, logger });
  let result;
  try {
    result = await replayDeadLetters({
      kafka,
      topic: values.topic,
      code: values.code,
      rule: values.rule,
      to: values.to,
    });
  } catch (error) {
    process.stderr.write(`geb dlq replay: replaying ${values.topic} failed: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
  const where = Object.entries(result.byTopic)
    .map(([topic, n]) => `${n} to ${topic}`)
    .join(', ');
  process.stdout.write(
    `replayed ${result.replayed} of ${result.read} dead-lettered event(s)${where ? ` (${where})` : ''}; ` +
      `${result.filtered} left out by --code/--rule, ${result.unroutable} without a source topic\n`,
  );
  return EXIT.ok;
}

async function dlqShow(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        topic: { type: 'string' },
        limit: { type: 'string', default: '20' },
        'show-bodies': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`geb dlq show: ${(error as Error).message}\n${DLQ_USAGE}\n`);
    return EXIT.usage;
  }
  const limit = Number(values.limit);
  if (!values.topic || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    process.stderr.write(
      `geb dlq show: ${values.topic ? `--limit "${values.limit}" must be a whole number from 1 to 10000` : '--topic is required'}\n${DLQ_USAGE}\n`,
    );
    return EXIT.usage;
  }
  let connection;
  try {
    connection = loadKafkaConnectionConfig(env);
  } catch (error) {
    process.stderr.write(`geb dlq show: ${(error as Error).message}\n`);
    return EXIT.config;
  }
  const kafka = createKafka({ ...connection, logger: createLogger('warn') });
  let records;
  try {
    records = await readDeadLetters({ kafka, topic: values.topic, limit });
  } catch (error) {
    if (error instanceof DeadLetterTopicMissingError) {
      process.stderr.write(
        `geb dlq show: ${error.message} (dead-letter topics are named by DEAD_LETTER_TOPIC, {topic}.dlq by default)\n`,
      );
      return EXIT.failure;
    }
    process.stderr.write(`geb dlq show: reading ${values.topic} failed: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
  const views = records.map((r) => viewOf(r, values['show-bodies']));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ topic: values.topic, deadLetters: views }, null, 2)}\n`);
  } else if (views.length === 0) {
    process.stdout.write(`no dead-lettered events in ${values.topic}\n`);
  } else {
    process.stdout.write(`${views.map((v) => formatDeadLetter(values.topic ?? '', v)).join('\n\n')}\n`);
  }
  return EXIT.ok;
}

/** One dead-lettered event as `geb dlq show` prints it. */
export interface DeadLetterView {
  readonly partition: number;
  readonly offset: string;
  readonly code: string | null;
  readonly stage: string | null;
  readonly rule: string | null;
  readonly message: string | null;
  /** TOPIC/PARTITION/OFFSET of the original event, as `geb deliveries show --event` takes it. */
  readonly source: string | null;
  readonly deadLetteredAt: string | null;
  readonly key: string | null;
  readonly traceId: string | null;
  /** The producer's own headers: values masked unless --show-bodies. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as UTF-8 with --show-bodies; otherwise its size and a hash to tell events apart. */
  readonly body: string | null;
}

const REASON = new Set<string>(Object.values(DEAD_LETTER_HEADERS));

function viewOf(record: DeadLetterRecord, showBodies: boolean): DeadLetterView {
  const h = record.headers;
  const header = (name: string) => h[name] ?? null;
  const sourceTopic = header(DEAD_LETTER_HEADERS.topic);
  const own: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (REASON.has(name) || name === 'traceparent' || name === 'tracestate') continue;
    own[name] = showBodies ? value : mask(Buffer.from(value));
  }
  return {
    partition: record.partition,
    offset: record.offset,
    code: header(DEAD_LETTER_HEADERS.code),
    stage: header(DEAD_LETTER_HEADERS.stage),
    rule: header(DEAD_LETTER_HEADERS.rule),
    message: header(DEAD_LETTER_HEADERS.message),
    source:
      sourceTopic === null
        ? null
        : `${sourceTopic}/${header(DEAD_LETTER_HEADERS.partition) ?? '?'}/${header(DEAD_LETTER_HEADERS.offset) ?? '?'}`,
    deadLetteredAt: header(DEAD_LETTER_HEADERS.time),
    key: record.key,
    // W3C traceparent: version-traceid-spanid-flags.
    traceId: h['traceparent']?.split('-')[1] ?? null,
    headers: own,
    body: record.value === null ? null : showBodies ? record.value.toString('utf8') : mask(record.value),
  };
}

/** Bodies and header values may hold personal data: only their size and a short hash leave the terminal. */
function mask(value: Buffer): string {
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 12);
  return `(masked: ${value.length} bytes, sha256 ${hash}…; --show-bodies prints it)`;
}

function formatDeadLetter(topic: string, v: DeadLetterView): string {
  const lines = [
    `${topic}/${v.partition}/${v.offset}  ${v.code ?? '(no code)'}  stage ${v.stage ?? '-'}  rule ${v.rule ?? '-'}` +
      `  at ${v.deadLetteredAt ?? '-'}`,
  ];
  const field = (label: string, value: string | null) => {
    if (value !== null && value !== '') lines.push(`  ${label.padEnd(16)}${value}`);
  };
  field('reason', v.message);
  field('source event', v.source);
  field('key', v.key);
  field('traceId', v.traceId);
  for (const [name, value] of Object.entries(v.headers)) field(`header ${name}`, value);
  field('body', v.body ?? '(none)');
  return lines.join('\n');
}
