import { Agent as HttpsAgent } from 'node:https';
import type * as ConfluentSchemaRegistry from '@kafkajs/confluent-schema-registry';
import { lazyPackage } from '../lazy.js';

const registryPackage = lazyPackage<typeof ConfluentSchemaRegistry>('@kafkajs/confluent-schema-registry');
import { BridgeError } from '../errors.js';
import type { Secret } from '../secret.js';

export type SchemaType = 'AVRO' | 'JSON' | 'PROTOBUF';

export interface SchemaReference {
  readonly name: string;
  readonly subject: string;
  readonly version: number;
}

/** A schema as the registry stores it, with every schema it references (transitively, dependencies first). */
export interface WriterSchema {
  readonly id: number | undefined;
  readonly schemaType: SchemaType;
  readonly schema: string;
  readonly references: readonly SchemaReference[];
  readonly referenced: readonly { readonly name: string; readonly schema: string }[];
}

export interface SchemaRegistrySettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: Secret | undefined;
  /** PEM contents: a CA bundle to trust, and a client certificate and key for mutual TLS. */
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: Secret | undefined;
  /** Quick retries of network errors and 5xx before a lookup fails (and the pipeline pauses). */
  readonly retries?: number;
  readonly retryDelayMs?: number;
}

interface RawAnswer {
  id?: number;
  schema: string;
  schemaType?: string;
  references?: SchemaReference[];
}

/** The REST resources of @kafkajs/confluent-schema-registry's client (its `api` is typed private but stable). */
interface RegistryApi {
  Schema: { find(p: { id: number }): Promise<{ data(): RawAnswer }> };
  Subject: {
    version(p: { subject: string; version: number | string }): Promise<{ data(): RawAnswer }>;
    latestVersion(p: { subject: string }): Promise<{ data(): RawAnswer }>;
  };
}

/**
 * Fetches writer schemas by id through @kafkajs/confluent-schema-registry's REST client (Basic auth, TLS agent),
 * cached for the life of the process: a schema id never changes meaning. Failures are classified into BridgeErrors:
 * 404 is the event's problem (dead-letter), anything else is the registry's (pause).
 */
export class SchemaRegistryClient {
  readonly #api: RegistryApi;
  readonly #byId = new Map<number, Promise<WriterSchema>>();
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly url: string;

  constructor(settings: SchemaRegistrySettings) {
    this.url = settings.url.replace(/\/+$/, '');
    const tls = settings.ca !== undefined || settings.cert !== undefined;
    const registry = new (registryPackage().SchemaRegistry)({
      host: this.url,
      // Retries are ours (below): mappersmith reports network errors as status 400 and would not retry them.
      retry: { retries: 0 },
      ...(settings.username !== undefined && {
        auth: { username: settings.username, password: settings.password?.reveal() ?? '' },
      }),
      ...(tls && {
        agent: new HttpsAgent({
          keepAlive: true,
          ...(settings.ca !== undefined && { ca: settings.ca }),
          ...(settings.cert !== undefined && { cert: settings.cert }),
          ...(settings.key !== undefined && { key: settings.key.reveal() }),
        }),
      }),
    });
    this.#api = (registry as unknown as { api: RegistryApi }).api;
    this.#retries = settings.retries ?? 2;
    this.#retryDelayMs = settings.retryDelayMs ?? 200;
  }

  /** The writer schema of a framed value. Throws SCHEMA_NOT_FOUND, REGISTRY_UNAUTHORIZED or REGISTRY_UNAVAILABLE. */
  getById(id: number): Promise<WriterSchema> {
    let cached = this.#byId.get(id);
    if (!cached) {
      cached = this.#call(`schema id ${id}`, () => this.#api.Schema.find({ id })).then((raw) =>
        this.#resolve({ ...raw, id }),
      );
      // A failure is not cached: the registry may be back, or the schema registered, by the next attempt.
      cached.catch(() => this.#byId.delete(id));
      this.#byId.set(id, cached);
    }
    return cached;
  }

  /** The latest schema of a subject, or undefined when the subject does not exist. */
  async getLatest(subject: string): Promise<WriterSchema | undefined> {
    try {
      const raw = await this.#call(`subject ${subject}`, () => this.#api.Subject.latestVersion({ subject }));
      return await this.#resolve(raw);
    } catch (error) {
      if (error instanceof BridgeError && error.code === 'SCHEMA_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async #resolve(raw: RawAnswer): Promise<WriterSchema> {
    const referenced: { name: string; schema: string }[] = [];
    const seen = new Set<string>();
    const visit = async (refs: readonly SchemaReference[]) => {
      for (const ref of refs) {
        const key = `${ref.subject}/${ref.version}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const found = await this.#call(`reference ${ref.name}`, () =>
          this.#api.Subject.version({ subject: ref.subject, version: ref.version }),
        );
        await visit(found.references ?? []);
        referenced.push({ name: ref.name, schema: found.schema });
      }
    };
    await visit(raw.references ?? []);
    return {
      id: raw.id,
      schemaType: schemaTypeOf(raw.schemaType),
      schema: raw.schema,
      references: raw.references ?? [],
      referenced,
    };
  }

  async #call(what: string, request: () => Promise<{ data(): RawAnswer }>): Promise<RawAnswer> {
    for (let attempt = 0; ; attempt++) {
      let status: number | undefined;
      try {
        return (await request()).data();
      } catch (error) {
        status = (error as { status?: number }).status;
      }
      if (status === 404) {
        throw new BridgeError('SCHEMA_NOT_FOUND', `the schema registry has no ${what}`, { status });
      }
      if (status === 401 || status === 403) {
        throw new BridgeError(
          'REGISTRY_UNAUTHORIZED',
          `the schema registry refused our credentials (${status})`,
          {
            status,
          },
        );
      }
      if (attempt >= this.#retries) {
        // Mappersmith turns a connection failure into status 400: no registry answers a GET with 400 itself.
        const cause = status === undefined || status === 400 ? 'could not be reached' : `answered ${status}`;
        throw new BridgeError('REGISTRY_UNAVAILABLE', `the schema registry ${cause} while fetching ${what}`, {
          ...(status !== undefined && { status }),
        });
      }
      await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs * 2 ** attempt));
    }
  }
}

function schemaTypeOf(value: string | undefined): SchemaType {
  // Confluent leaves schemaType out for Avro, its original format.
  if (value === undefined || value === 'AVRO') return 'AVRO';
  if (value === 'JSON' || value === 'PROTOBUF') return value;
  throw new BridgeError('DECODE_FAILED', `the schema registry returned an unknown schema type "${value}"`);
}
