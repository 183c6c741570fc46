import avro from 'avsc';
import { Liquid } from 'liquidjs';
import protobuf from 'protobufjs';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import { closest } from './suggest.js';

/**
 * A subject's schema as the registry client gives it: declared here, so that the rules layer does not depend on the
 * Kafka layer (src/kafka/schema-registry.ts satisfies it).
 */
export interface SubjectSchema {
  readonly schemaType: 'AVRO' | 'JSON' | 'PROTOBUF';
  readonly schema: string;
  readonly referenced: readonly { readonly schema: string }[];
}

/** Where the latest schema of a subject comes from (the schema registry client). */
export interface SchemaSource {
  getLatest(subject: string): Promise<SubjectSchema | undefined>;
}

/**
 * For `geb rules check FILE --registry URL`: which fields named by a rule's pattern or templates the latest schema of
 * its topic's subject (topic-name strategy: `<topic>-value`) does not have. Warnings, not errors: an event may still
 * carry the field under an older or newer schema, and a template may guard it.
 */
export interface SchemaFieldWarning {
  readonly rule: string;
  readonly topic: string;
  /** What the fields were checked against: `<topic>-value` for the registry, else the topic. */
  readonly subject: string;
  /** Dotted path, e.g. `customer.email`. */
  readonly field: string;
  /** Where the rule names it: `match` or the template's place, e.g. `action.agentlessEmail.to.email`. */
  readonly where: string;
  readonly message: string;
  /** The nearest field the events do have, e.g. `customer.email` for `customer.emial`. */
  readonly suggestion?: string;
  /** `file:line:col: ` where the rules file names the field, or '' when not known. */
  readonly location: string;
}

export interface SchemaFieldReport {
  readonly warnings: readonly SchemaFieldWarning[];
  /** Subjects (or topics, for a resolver) with no schema: their fields were not checked. */
  readonly unchecked: readonly string[];
}

/** The fields a schema gives an event: `any` where it cannot say (maps, open JSON objects), `leaf` for scalars. */
export type Shape = 'any' | 'leaf' | { readonly fields: ReadonlyMap<string, Shape> };

/** What a topic's events look like, by a writer schema or a shape, with words naming where it came from. */
export type TopicShape =
  | { readonly schema: SubjectSchema; readonly source: string }
  | { readonly shape: Shape; readonly source: string };

interface NamedField {
  readonly path: readonly string[];
  readonly where: string;
  /** Where in the rules document: the rule's own path below it, e.g. `['action', 'agentlessEmail', 'to', 'email']`. */
  readonly segments: readonly (string | number)[];
}

interface RawRule {
  readonly name?: unknown;
  readonly topics?: unknown;
  readonly match?: unknown;
  readonly action?: unknown;
}

const liquid = new Liquid();

/** Against a schema registry: the latest schema of each topic's subject (`<topic>-value`). */
export async function checkSchemaFields(
  rulesText: string,
  registry: SchemaSource,
  source?: string,
): Promise<SchemaFieldReport>;
/** Against what `shapeFor` says each topic's events look like (a JSON Schema or sample events the author gives). */
export async function checkSchemaFields(
  rulesText: string,
  shapeFor: (topic: string) => Promise<TopicShape | undefined>,
  source?: string,
): Promise<SchemaFieldReport>;
export async function checkSchemaFields(
  rulesText: string,
  from: SchemaSource | ((topic: string) => Promise<TopicShape | undefined>),
  source?: string,
): Promise<SchemaFieldReport> {
  const registry = typeof from === 'function' ? undefined : from;
  const shapeFor =
    typeof from === 'function'
      ? from
      : async (topic: string): Promise<TopicShape | undefined> => {
          const schema = await from.getLatest(`${topic}-value`);
          return schema ? { schema, source: `the latest schema of ${topic}-value` } : undefined;
        };
  const lineCounter = new LineCounter();
  const doc = parseDocument(rulesText, { lineCounter });
  const data = doc.toJS() as { rules?: unknown } | null;
  const rules = Array.isArray(data?.rules) ? (data.rules as RawRule[]) : [];
  const shapes = new Map<string, Promise<{ shape: Shape; source: string } | undefined>>();
  const warnings: SchemaFieldWarning[] = [];
  const unchecked = new Set<string>();

  for (const [index, rule] of rules.entries()) {
    const name = typeof rule.name === 'string' ? rule.name : '?';
    const topics = Array.isArray(rule.topics)
      ? rule.topics.filter((t): t is string => typeof t === 'string')
      : [];
    const named = [
      ...patternFields(rule.match, [], ['match']),
      ...templateFields(rule.action, 'action', ['action']),
    ];
    for (const topic of topics) {
      const subject = registry ? `${topic}-value` : topic;
      let shape = shapes.get(topic);
      if (!shape) {
        shape = shapeFor(topic).then((given) =>
          given === undefined
            ? undefined
            : { shape: 'shape' in given ? given.shape : shapeOf(given.schema), source: given.source },
        );
        shapes.set(topic, shape);
      }
      const resolved = await shape;
      if (resolved === undefined) {
        unchecked.add(subject);
        continue;
      }
      for (const field of named) {
        if (hasPath(resolved.shape, field.path)) continue;
        const dotted = field.path.join('.');
        const suggestion = suggestPath(resolved.shape, field.path);
        warnings.push({
          rule: name,
          topic,
          subject,
          field: dotted,
          where: field.where,
          message: `rule "${name}" ${field.where}: ${resolved.source} has no field "${dotted}"`,
          ...(suggestion !== undefined && { suggestion }),
          location: locationOf(
            doc,
            lineCounter,
            rulesText,
            source,
            ['rules', index, ...field.segments],
            dotted,
          ),
        });
      }
    }
  }
  return { warnings, unchecked: [...unchecked] };
}

/**
 * `file:line:col: ` of the field: the key of a pattern field, or the variable inside a template string (found in the
 * source text of the scalar, so that the column points at `user.emial` itself).
 */
function locationOf(
  doc: Document,
  lineCounter: LineCounter,
  text: string,
  source: string | undefined,
  segments: readonly (string | number)[],
  dotted: string,
): string {
  if (source === undefined) return '';
  const last = segments[segments.length - 1];
  let offset: number | undefined;
  const parent = doc.getIn(segments.slice(0, -1), true);
  if (isMap(parent) && typeof last === 'string') {
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === last);
    if (pair && isScalar(pair.value) && pair.value.range) {
      const [start, end] = pair.value.range;
      const at = text.slice(start, end).indexOf(dotted);
      offset = at >= 0 ? start + at : start;
    } else if (pair && isScalar(pair.key)) {
      offset = pair.key.range?.[0];
    }
  }
  if (offset === undefined) {
    const node = doc.getIn(segments, true);
    offset = isNode(node) ? node.range?.[0] : undefined;
  }
  if (offset === undefined) return `${source}: `;
  const pos = lineCounter.linePos(offset);
  return `${source}:${pos.line}:${pos.col}: `;
}

/** The nearest path the shape has: each segment kept where it exists, the first that does not replaced by its nearest. */
export function suggestPath(shape: Shape, path: readonly string[]): string | undefined {
  const out: string[] = [];
  let node: Shape = shape;
  for (const segment of path) {
    if (node === 'any') return [...out, segment].join('.');
    if (node === 'leaf') return undefined;
    const child = node.fields.get(segment);
    if (child !== undefined) {
      out.push(segment);
      node = child;
      continue;
    }
    const near = closest(segment, node.fields.keys());
    if (near === undefined) return undefined;
    out.push(near);
    node = node.fields.get(near) as Shape;
  }
  return hasPath(shape, out) ? out.join('.') : undefined;
}

/** Pattern keys are field names; nested objects descend, arrays are leaves (the allowed values). */
function patternFields(
  pattern: unknown,
  prefix: readonly string[],
  segments: readonly (string | number)[],
): NamedField[] {
  if (!isObject(pattern)) return [];
  return Object.entries(pattern).flatMap(([key, value]) => {
    // `$or` holds alternative patterns; other `$` keys (e.g. `$kafka`) match the record, not the event.
    if (key === '$or' && Array.isArray(value))
      return value.flatMap((p, i) => patternFields(p, prefix, [...segments, key, i]));
    if (key.startsWith('$')) return [];
    const path = [...prefix, key];
    return isObject(value)
      ? patternFields(value, path, [...segments, key])
      : [{ path, where: 'match', segments: [...segments, key] }];
  });
}

/** Every string under the action is a template; its global variables are the event fields it reads. */
function templateFields(
  action: unknown,
  where: string,
  segments: readonly (string | number)[],
): NamedField[] {
  if (typeof action === 'string') {
    try {
      return liquid
        .globalVariableSegmentsSync(action)
        .map((parts) => ({
          path: parts.filter((s): s is string => typeof s === 'string'),
          where,
          segments,
        }))
        .filter((f) => f.path.length > 0);
    } catch {
      return []; // a syntax error is the rules check's own finding
    }
  }
  if (Array.isArray(action))
    return action.flatMap((item, i) => templateFields(item, `${where}[${i}]`, [...segments, i]));
  if (isObject(action))
    return Object.entries(action).flatMap(([k, v]) => templateFields(v, `${where}.${k}`, [...segments, k]));
  return [];
}

/** The fields sample events have: every field any of them holds (a field null or an empty list is open). */
export function shapeOfSamples(events: readonly unknown[]): Shape {
  const of = (value: unknown, depth: number): Shape => {
    if (depth > 64 || value === null) return 'any';
    if (Array.isArray(value))
      return value.length === 0 ? 'any' : value.map((v) => of(v, depth + 1)).reduce(merge);
    if (isObject(value)) {
      const fields = new Map<string, Shape>();
      for (const [k, v] of Object.entries(value)) fields.set(k, of(v, depth + 1));
      return { fields };
    }
    return 'leaf';
  };
  return events.length === 0 ? 'any' : events.map((e) => of(e, 0)).reduce(merge);
}

/** The fields a JSON Schema (draft 7 or later, local `$ref`s) gives an event. */
export function shapeOfJsonSchema(schema: unknown): Shape {
  return jsonShape(schema);
}

export function hasPath(shape: Shape, path: readonly string[]): boolean {
  if (path.length === 0 || shape === 'any') return true;
  if (shape === 'leaf') return false;
  const [head, ...rest] = path;
  const child = head === undefined ? undefined : shape.fields.get(head);
  return child !== undefined && hasPath(child, rest);
}

export function shapeOf(schema: SubjectSchema): Shape {
  switch (schema.schemaType) {
    case 'AVRO':
      return avroShape(
        JSON.parse(schema.schema) as avro.Schema,
        schema.referenced.map((r) => r.schema),
      );
    case 'JSON':
      return jsonShape(JSON.parse(schema.schema) as unknown);
    case 'PROTOBUF':
      return protobufShape(
        schema.schema,
        schema.referenced.map((r) => r.schema),
      );
  }
}

function merge(a: Shape, b: Shape): Shape {
  if (a === 'any' || b === 'any') return 'any';
  if (a === 'leaf') return b;
  if (b === 'leaf') return a;
  const fields = new Map(a.fields);
  for (const [k, v] of b.fields) fields.set(k, fields.has(k) ? merge(fields.get(k) as Shape, v) : v);
  return { fields };
}

function avroShape(schema: avro.Schema, referenced: readonly string[]): Shape {
  const registry: Record<string, avro.Type> = {};
  for (const ref of referenced) avro.Type.forSchema(JSON.parse(ref) as avro.Schema, { registry });
  const type = avro.Type.forSchema(schema, { registry });
  const seen = new Map<avro.Type, Shape>();
  const walk = (t: avro.Type): Shape => {
    const cached = seen.get(t);
    if (cached) return cached;
    if (t instanceof avro.types.RecordType) {
      const fields = new Map<string, Shape>();
      const shape = { fields };
      seen.set(t, shape); // recursive records
      for (const f of t.fields) fields.set(f.name, walk(f.type));
      return shape;
    }
    if (t instanceof avro.types.ArrayType) return walk(t.itemsType);
    if (t instanceof avro.types.MapType) return 'any';
    if (t instanceof avro.types.UnwrappedUnionType || t instanceof avro.types.WrappedUnionType) {
      return t.types.map(walk).reduce<Shape>(merge, 'leaf');
    }
    return 'leaf';
  };
  return walk(type);
}

function jsonShape(root: unknown): Shape {
  const resolve = (node: unknown, depth: number): Shape => {
    if (depth > 32 || !isObject(node)) return 'any';
    if (typeof node['$ref'] === 'string') {
      const ref = node['$ref'];
      if (!ref.startsWith('#/')) return 'any';
      let target: unknown = root;
      for (const part of ref.slice(2).split('/')) target = isObject(target) ? target[part] : undefined;
      return resolve(target, depth + 1);
    }
    let shape: Shape = 'leaf';
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = node[key];
      if (Array.isArray(list)) for (const sub of list) shape = merge(shape, resolve(sub, depth + 1));
    }
    if (isObject(node['properties'])) {
      const fields = new Map<string, Shape>();
      for (const [k, v] of Object.entries(node['properties'])) fields.set(k, resolve(v, depth + 1));
      shape = merge(shape, { fields });
    } else if (node['type'] === 'object' || isObject(node['additionalProperties'])) {
      return 'any';
    }
    if (node['items'] !== undefined) shape = merge(shape, resolve(node['items'], depth + 1));
    if (shape === 'leaf' && node['type'] === undefined && node['items'] === undefined) return 'any';
    return shape;
  };
  return resolve(root, 0);
}

/** A topic may carry any message type of the file: a field is there if any top-level message has it. */
function protobufShape(schema: string, referenced: readonly string[]): Shape {
  const root = new protobuf.Root();
  const imports = new Set<string>();
  for (const text of [...referenced, schema]) {
    const parsed = protobuf.parse(text, root, { keepCase: true });
    for (const i of parsed.imports ?? []) imports.add(i);
  }
  for (const file of imports) {
    const common = protobuf.common.get(file);
    if (common?.nested) root.addJSON(common.nested);
  }
  root.resolveAll();
  const alone = protobuf.parse(schema, new protobuf.Root(), { keepCase: true });
  const home = alone.package ? alone.root.lookup(alone.package) : alone.root;
  const tops =
    home instanceof protobuf.Namespace ? home.nestedArray.filter((n) => n instanceof protobuf.Type) : [];
  const seen = new Map<protobuf.Type, Shape>();
  const walk = (type: protobuf.Type): Shape => {
    const cached = seen.get(type);
    if (cached) return cached;
    // Well-known types come out as scalars (Timestamp as a string, wrappers as their value).
    if (type.fullName.startsWith('.google.protobuf.')) return 'leaf';
    const fields = new Map<string, Shape>();
    const shape = { fields };
    seen.set(type, shape);
    for (const field of type.fieldsArray) {
      const resolved = field.resolve().resolvedType;
      fields.set(field.name, field.map ? 'any' : resolved instanceof protobuf.Type ? walk(resolved) : 'leaf');
    }
    return shape;
  };
  return tops.map((t) => walk(root.lookupType(t.fullName))).reduce<Shape>(merge, 'leaf');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
