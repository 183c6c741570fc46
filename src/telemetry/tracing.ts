import {
  context,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import type * as SdkNode from '@opentelemetry/sdk-node';
import { lazyPackage } from '../lazy.js';

const sdkNode = lazyPackage<typeof SdkNode>('@opentelemetry/sdk-node');
import { BridgeError, ShutdownError } from '../errors.js';

/**
 * Tracing is configured by the standard OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf), OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER…).
 * Spans are created explicitly through the OTel API in the pipeline, the token provider and the Genesys client: no
 * monkey-patching, which is fragile under ESM. Without a started SDK the API is a no-op, and spans skip their attributes.
 */
export const TRACER_NAME = 'genesys-event-bridge';
export const tracer = () => trace.getTracer(TRACER_NAME);

export interface Tracing {
  /** Flushes spans still buffered; safe to call twice. */
  shutdown(): Promise<void>;
}

export function startTracing(env: Readonly<Record<string, string | undefined>> = process.env): Tracing {
  if (/^true$/i.test(env['OTEL_SDK_DISABLED'] ?? '')) return { shutdown: () => Promise.resolve() };
  const sdk = new (sdkNode().NodeSDK)({
    serviceName: env['OTEL_SERVICE_NAME'] ?? 'genesys-event-bridge',
    instrumentations: [],
    // Metrics are served in Prometheus format on the admin server, and logs go to stdout as JSON lines.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  let stopping: Promise<void> | undefined;
  return {
    shutdown() {
      stopping ??= sdk.shutdown().catch(() => undefined);
      return stopping;
    },
  };
}

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** Kafka header values are Buffers (or arrays of them): read the first, as text. */
const kafkaGetter: TextMapGetter<Readonly<Record<string, HeaderValue>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : first.toString();
  },
};

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** The producer's context, from the record's W3C `traceparent`/`tracestate` headers. */
export function contextFromHeaders(headers: Readonly<Record<string, HeaderValue>>): Context {
  return propagation.extract(context.active(), headers, kafkaGetter);
}

/** The active context as W3C headers, for an outgoing HTTP call or Kafka record. */
export function headersFromContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier, recordSetter);
  return carrier;
}

/**
 * Runs `fn` in a new active span, ending it afterwards. A thrown BridgeError is recorded with its stable code only;
 * its message is already free of personal data, but exception stack traces of other errors may not be, so those
 * record their type alone.
 */
export async function inSpan<T>(
  name: string,
  options: {
    kind?: SpanKind;
    attributes?: Record<string, string | number | boolean | undefined>;
    parent?: Context;
  },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL }, parent, async (span) => {
    setAttributes(span, options.attributes);
    try {
      return await fn(span);
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * A span that outlives the call that starts it (an event's CONSUMER span: started when the event is fetched, ended when
 * its deliveries are final), with the context its child spans run in. End it with endSpan.
 */
export function startSpan(
  name: string,
  options: {
    kind?: SpanKind;
    attributes?: Record<string, string | number | boolean | undefined>;
    parent?: Context;
  },
): { span: Span; context: Context } {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL }, parent);
  setAttributes(span, options.attributes);
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a span from startSpan, recording the error it ended with, as inSpan does. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) recordError(span, error);
  span.end();
}

/** The synchronous twin of inSpan, for stages that do no I/O (decode, match). */
export function inSpanSync<T>(name: string, fn: (span: Span) => T): T {
  return tracer().startActiveSpan(name, (span) => {
    try {
      return fn(span);
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

export function recordError(span: Span, error: unknown): void {
  if (error instanceof ShutdownError) {
    span.setAttribute('geb.interrupted', true);
    return;
  }
  if (error instanceof BridgeError) {
    span.setAttributes({ 'error.type': error.code, 'geb.error.disposition': error.disposition });
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.setAttribute('error.type', error instanceof Error ? error.name : 'unknown');
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

/**
 * Set once the span exists, and only if it records: with tracing off (no SDK, or OTEL_SDK_DISABLED) every span is a
 * no-op, and preparing the attributes of an event's spans was a tenth of the CPU of an event that matches no rule.
 * The cost: a sampler sees no attributes when it decides (the standard ones look at the trace id and parent only).
 */
function setAttributes(
  span: Span,
  attributes: Record<string, string | number | boolean | undefined> | undefined,
): void {
  if (!attributes || !span.isRecording()) return;
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined) span.setAttribute(key, value);
  }
}

export { SpanKind };
