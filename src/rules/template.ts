import { Liquid, type Template as LiquidTemplate } from 'liquidjs';
import { BridgeError } from '../errors.js';

/**
 * Templates are Liquid (`{{ customer.name }}`), parsed once when the rules file is loaded. Variables are strict: a
 * field the event lacks, or holds as null, fails that event's delivery instead of putting an empty string in an email.
 */
export type TemplateMode = 'text' | 'html' | 'header';

export interface Template {
  readonly source: string;
  /** Names the template in errors, e.g. `action.agentlessEmail.subject`. */
  readonly field: string;
  render(scope: Record<string, unknown>): string;
}

/**
 * Limits on the work one render may do, since the event decides how much a loop or filter does
 * (`{% for i in (1..n) %}` with n = 1e9 from the event took 52 s and 2.2 GB). A render that goes over either fails
 * with TEMPLATE_LIMIT_EXCEEDED and its event is dead-lettered. Normal templates render in well under a millisecond
 * and allocate a few KB, so the limits leave them a margin of hundreds of times.
 */
export const TEMPLATE_LIMITS = {
  /** Wall-clock time one template may take to render, checked between nodes (each loop turn is a node). */
  renderMs: 1_000,
  /**
   * What one render may allocate, in Liquid's units: characters of strings made by filters, elements of arrays and
   * of ranges. 8 million is more than twice the largest body Genesys accepts (3 MB).
   */
  memoryUnits: 8_000_000,
  /** Characters of template source parsed at once: the rules file's templates, checked at load. */
  parseChars: 4_000_000,
} as const;

// lenientIf lets `{{ x | default: "y" }}` and `{% if x %}` see a missing field as empty, while a plain `{{ x }}` stays
// an error. The locale is fixed so that month names do not depend on the machine the bridge runs on.
const options = {
  strictVariables: true,
  strictFilters: true,
  ownPropertyOnly: true,
  lenientIf: true,
  locale: 'en-US',
  renderLimit: TEMPLATE_LIMITS.renderMs,
  memoryLimit: TEMPLATE_LIMITS.memoryUnits,
  parseLimit: TEMPLATE_LIMITS.parseChars,
  // No template ever reads a file through Liquid (the tags below are refused); an empty map also keeps liquidjs from
  // looking on disk should a file tag be reached some other way.
  templates: {},
} as const;
const plain = withoutFileTags(withFilters(new Liquid(options)));
const html = withoutFileTags(withFilters(new Liquid({ ...options, outputEscape: 'escape' })));

/**
 * Liquid's file tags (`include`, `render`, `layout`) are off: they read files at render time, from paths an event
 * could supply, outside what the rules file names and the reloader watches. A template that uses one is refused at
 * load, with its position. Shared text belongs in a template file (`{ file: … }`) of its own.
 */
function withoutFileTags(engine: Liquid): Liquid {
  for (const tag of ['include', 'render', 'layout']) {
    engine.registerTag(tag, {
      parse() {
        throw new Error(
          `the "${tag}" tag is not available: Liquid's file tags are off; put the text in the template or a template file`,
        );
      },
      render() {
        return '';
      },
    });
  }
  return engine;
}

/** Filters beyond Liquid's standard set (which already has date with a time zone, default, upcase, downcase…). */
function withFilters(engine: Liquid): Liquid {
  // {{ amount | number: "de-DE", 2 }} → 1.234,50
  engine.registerFilter('number', (value: unknown, locale?: unknown, decimals?: unknown) =>
    formatNumber(value, locale, decimals === undefined ? {} : fractionDigits(decimals)),
  );
  // {{ amount | currency: "EUR", "fr-FR" }} → 1 234,50 €
  engine.registerFilter('currency', (value: unknown, currency?: unknown, locale?: unknown) =>
    formatNumber(value, locale, { style: 'currency', currency: textOf(currency, 'USD') }),
  );
  return engine;
}

function textOf(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function fractionDigits(decimals: unknown): Intl.NumberFormatOptions {
  const digits = Number(decimals);
  return { minimumFractionDigits: digits, maximumFractionDigits: digits };
}

function formatNumber(value: unknown, locale: unknown, format: Intl.NumberFormatOptions): string {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  // Thrown errors are reported by kind only (TEMPLATE_RENDER_FAILED), never with the value.
  if (value === '' || !Number.isFinite(n)) throw new TypeError('not a number');
  return new Intl.NumberFormat(textOf(locale, 'en-US'), format).format(n);
}

export class TemplateSyntaxError extends Error {
  constructor(
    readonly field: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateSyntaxError';
  }
}

/** `file` names the template file the source came from, for error messages. */
export function compileTemplate(source: string, field: string, mode: TemplateMode, file?: string): Template {
  // Text with no tag is its own output (Liquid escapes only what {{ }} outputs): nothing to parse or keep. Most
  // strings of a large rules file are such constants (a sender, a body), and a parsed template costs a few KB.
  if (!source.includes('{{') && !source.includes('{%')) {
    const out = mode === 'header' ? stripLineBreaks(source) : source;
    return { source, field, render: () => out };
  }
  const engine = mode === 'html' ? html : plain;
  // Parsed here to report a syntax error at load, then dropped: a parsed template is kept only once it is first
  // rendered, since with thousands of rules most never render in a given process (about 1 KB each).
  let parsed: LiquidTemplate[] | undefined;
  try {
    engine.parse(source);
  } catch (error) {
    const e = error as Error & { token?: { getPosition?: () => [number, number] } };
    const [line, column] = e.token?.getPosition?.() ?? [undefined, undefined];
    const where =
      file === undefined ? '' : ` in ${file}${line === undefined ? '' : ` (line ${line}, column ${column})`}`;
    throw new TemplateSyntaxError(
      field,
      line,
      column,
      `${field}: invalid template${where}: ${firstLine(e.message)}`,
    );
  }
  return {
    source,
    field,
    render(scope) {
      let out: string;
      try {
        out = engine.renderSync((parsed ??= engine.parse(source)), scope) as string;
      } catch (error) {
        const message = (error as Error).message;
        const limit = /(template render|memory alloc) limit exceeded/.exec(message)?.[1];
        if (limit !== undefined) {
          throw new BridgeError(
            'TEMPLATE_LIMIT_EXCEEDED',
            limit === 'memory alloc'
              ? `${field}: rendering would allocate more than ${TEMPLATE_LIMITS.memoryUnits} units (the template memory limit)`
              : `${field}: rendering took longer than ${TEMPLATE_LIMITS.renderMs} ms (the template time limit)`,
          );
        }
        const variable = /undefined variable: ([^,]+)/.exec(message)?.[1];
        if (variable !== undefined) {
          throw new BridgeError(
            'TEMPLATE_VARIABLE_MISSING',
            `${field}: the event has no value for "${variable}"`,
          );
        }
        // Other render errors (a filter given a value it cannot use) may quote the value: keep only the kind.
        throw new BridgeError(
          'TEMPLATE_RENDER_FAILED',
          `${field}: could not be rendered (${(error as Error).name})`,
        );
      }
      // A CR or LF in a subject, a name or an address would let an event inject mail headers.
      return mode === 'header' ? stripLineBreaks(out) : out;
    },
  };
}

function stripLineBreaks(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim();
}

/**
 * The scope templates see: the event with null-valued fields removed, so that strict variables treat null as missing.
 * Non-object events (a bare string or array) expose nothing.
 */
export function templateScope(event: unknown): Record<string, unknown> {
  const pruned = withoutNulls(event);
  return pruned && typeof pruned === 'object' && !Array.isArray(pruned)
    ? (pruned as Record<string, unknown>)
    : {};
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? message;
}
