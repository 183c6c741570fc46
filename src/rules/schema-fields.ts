import avro from 'avsc';
import { Liquid } from 'liquidjs';
import protobuf from 'protobufjs';
import { parse } from 'yaml';

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
  readonly subject: string;
  /** Dotted path, e.g. `customer.email`. */
  readonly field: string;
  /** Where the rule names it: `match` or the template's place, e.g. `action.agentlessEmail.to.email`. */
  readonly where: string;
  readonly message: string;
}

export interface SchemaFieldReport {
  readonly warnings: readonly SchemaFieldWarning[];
  /** Subjects with no schema in the registry: their topics' fields were not checked. */
  readonly unchecked: readonly string[];
}

/** The fields a schema gives an event: `any` where it cannot say (maps, open JSON objects), `leaf` for scalars. */
export type Shape = 'any' | 'leaf' | { readonly fields: ReadonlyMap<string, Shape> };

interface NamedField {
  readonly path: readonly string[];
  readonly where: string;
}

interface RawRule {
  readonly name?: unknown;
  readonly topics?: unknown;
  readonly match?: unknown;
  readonly action?: unknown;
}

const liquid = new Liquid();

export async function checkSchemaFields(
  rulesText: string,
  registry: SchemaSource,
): Promise<SchemaFieldReport> {
  const doc = parse(rulesText) as { rules?: unknown } | null;
  const rules = Array.isArray(doc?.rules) ? (doc.rules as RawRule[]) : [];
  const shapes = new Map<string, Promise<Shape | undefined>>();
  const warnings: SchemaFieldWarning[] = [];
  const unchecked = new Set<string>();

  for (const rule of rules) {
    const name = typeof rule.name === 'string' ? rule.name : '?';
    const topics = Array.isArray(rule.topics)
      ? rule.topics.filter((t): t is string => typeof t === 'string')
      : [];
    const named = [...patternFields(rule.match, []), ...templateFields(rule.action, 'action')];
    for (const topic of topics) {
      const subject = `${topic}-value`;
      let shape = shapes.get(subject);
      if (!shape) {
        shape = registry.getLatest(subject).then((schema) => (schema ? shapeOf(schema) : undefined));
        shapes.set(subject, shape);
      }
      const resolved = await shape;
      if (resolved === undefined) {
        unchecked.add(subject);
        continue;
      }
      for (const field of named) {
        if (hasPath(resolved, field.path)) continue;
        const dotted = field.path.join('.');
        warnings.push({
          rule: name,
          topic,
          subject,
          field: dotted,
          where: field.where,
          message: `rule "${name}" ${field.where}: the latest schema of ${subject} has no field "${dotted}"`,
        });
      }
    }
  }
  return { warnings, unchecked: [...unchecked] };
}

/** Pattern keys are field names; nested objects descend, arrays are leaves (the allowed values). */
function patternFields(pattern: unknown, prefix: readonly string[]): NamedField[] {
  if (!isObject(pattern)) return [];
  return Object.entries(pattern).flatMap(([key, value]) => {
    // `$or` holds alternative patterns; other `$` keys (e.g. `$kafka`) match the record, not the event.
    if (key === '$or' && Array.isArray(value)) return value.flatMap((p) => patternFields(p, prefix));
    if (key.startsWith('$')) return [];
    const path = [...prefix, key];
    return isObject(value) ? patternFields(value, path) : [{ path, where: 'match' }];
  });
}

/** Every string under the action is a template; its global variables are the event fields it reads. */
function templateFields(action: unknown, where: string): NamedField[] {
  if (typeof action === 'string') {
    try {
      return liquid
        .globalVariableSegmentsSync(action)
        .map((segments) => ({
          path: segments.filter((s): s is string => typeof s === 'string'),
          where,
        }))
        .filter((f) => f.path.length > 0);
    } catch {
      return []; // a syntax error is the rules check's own finding
    }
  }
  if (Array.isArray(action)) return action.flatMap((item, i) => templateFields(item, `${where}[${i}]`));
  if (isObject(action)) return Object.entries(action).flatMap(([k, v]) => templateFields(v, `${where}.${k}`));
  return [];
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
