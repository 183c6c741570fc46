/**
 * A fake of the Confluent Schema Registry REST API, limited to what @kafkajs/confluent-schema-registry and the bridge
 * call: register, look up, fetch by id and by subject version, and subject config. Answers, status codes and
 * `error_code`s follow Confluent's API reference (the same ones Apicurio's `/apis/ccompat/v7` gives).
 *
 * Tests decode against the run's real registry (Apicurio, test/support/apicurio-registry.ts). This fake is only for
 * what a real registry cannot be made to show on demand: an outage (`failWith`), a count of the requests made (the
 * schema cache), Basic auth and a TLS listener with the test certificate. Each test that uses it says why.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type SchemaType = 'AVRO' | 'JSON' | 'PROTOBUF';

export interface SchemaReference {
  readonly name: string;
  readonly subject: string;
  readonly version: number;
}

interface StoredSchema {
  readonly id: number;
  readonly schemaType: SchemaType;
  readonly schema: string;
  readonly references: readonly SchemaReference[];
}

interface Version {
  readonly version: number;
  readonly id: number;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export interface FakeRegistryOptions {
  /** When set, every request must carry these Basic credentials (else 401, as Confluent answers). */
  readonly auth?: { readonly username: string; readonly password: string };
  /** Serve https with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export class FakeSchemaRegistry {
  readonly #server: Server;
  readonly #schemas: StoredSchema[] = [];
  readonly #subjects = new Map<string, Version[]>();
  readonly #config = new Map<string, string>();
  readonly #auth: FakeRegistryOptions['auth'];
  /** Fault switch: answer every request with this status (e.g. 503) until cleared. */
  failWith: number | undefined;
  /** Requests seen, `METHOD path` each: lets tests assert caching. */
  readonly requests: string[] = [];

  readonly #scheme: string;

  private constructor(server: Server, auth: FakeRegistryOptions['auth'], scheme: string) {
    this.#server = server;
    this.#auth = auth;
    this.#scheme = scheme;
  }

  static async start(options: FakeRegistryOptions = {}): Promise<FakeSchemaRegistry> {
    const holder: { registry?: FakeSchemaRegistry } = {};
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      holder.registry?.handle(req, res).catch((error: unknown) => {
        holder.registry?.reply(res, 500, { error_code: 50001, message: String(error) });
      });
    };
    const server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
    const registry = new FakeSchemaRegistry(server, options.auth, options.tls ? 'https' : 'http');
    holder.registry = registry;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return registry;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `${this.#scheme}://127.0.0.1:${port}`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Registers without HTTP, for tests that need a schema in place (same rules as POST .../versions). */
  registerDirect(
    subject: string,
    schemaType: SchemaType,
    schema: string,
    references: SchemaReference[] = [],
  ): number {
    return this.#register(subject, schemaType, schema, references).id;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    this.requests.push(`${method} ${path}`);

    if (this.failWith !== undefined) {
      this.reply(res, this.failWith, { error_code: this.failWith * 100, message: 'injected fault' });
      return;
    }
    if (this.#auth) {
      const expected = `Basic ${Buffer.from(`${this.#auth.username}:${this.#auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        this.reply(res, 401, { error_code: 401, message: 'Unauthorized' });
        return;
      }
    }

    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const [head, a, b, c] = parts;

    if (method === 'GET' && head === 'schemas' && a === 'ids' && b !== undefined && parts.length === 3) {
      const stored = this.#schemas.find((s) => s.id === Number(b));
      if (!stored) return this.reply(res, 404, { error_code: 40403, message: `Schema ${b} not found` });
      return this.reply(res, 200, schemaBody(stored));
    }
    if (method === 'GET' && head === 'subjects' && parts.length === 1) {
      return this.reply(res, 200, [...this.#subjects.keys()]);
    }
    if (head === 'subjects' && a !== undefined) {
      const versions = this.#subjects.get(a);
      if (method === 'POST' && b === 'versions' && parts.length === 3) {
        const input = parseJson(body) as {
          schema?: string;
          schemaType?: SchemaType;
          references?: SchemaReference[];
        };
        if (typeof input.schema !== 'string') {
          return this.reply(res, 422, { error_code: 42201, message: 'Invalid schema' });
        }
        const stored = this.#register(a, input.schemaType ?? 'AVRO', input.schema, input.references ?? []);
        return this.reply(res, 200, { id: stored.id });
      }
      if (method === 'POST' && parts.length === 2) {
        const input = parseJson(body) as { schema?: string; schemaType?: SchemaType };
        if (!versions)
          return this.reply(res, 404, { error_code: 40401, message: `Subject '${a}' not found.` });
        const match = versions.find((v) => {
          const s = this.#byId(v.id);
          return s.schema === input.schema && s.schemaType === (input.schemaType ?? 'AVRO');
        });
        if (!match) return this.reply(res, 404, { error_code: 40403, message: 'Schema not found' });
        return this.reply(res, 200, this.#versionBody(a, match));
      }
      if (method === 'GET' && b === 'versions' && c !== undefined && parts.length === 4) {
        if (!versions)
          return this.reply(res, 404, { error_code: 40401, message: `Subject '${a}' not found.` });
        const version =
          c === 'latest' || c === '-1' ? versions.at(-1) : versions.find((v) => v.version === Number(c));
        if (!version) return this.reply(res, 404, { error_code: 40402, message: `Version ${c} not found.` });
        return this.reply(res, 200, this.#versionBody(a, version));
      }
      if (method === 'GET' && b === 'versions' && parts.length === 3) {
        if (!versions)
          return this.reply(res, 404, { error_code: 40401, message: `Subject '${a}' not found.` });
        return this.reply(
          res,
          200,
          versions.map((v) => v.version),
        );
      }
    }
    if (head === 'config' && a !== undefined && parts.length === 2) {
      if (method === 'GET') {
        const level = this.#config.get(a);
        if (!level) {
          return this.reply(res, 404, {
            error_code: 40408,
            message: `Subject '${a}' does not have subject-level compatibility configured`,
          });
        }
        return this.reply(res, 200, { compatibilityLevel: level });
      }
      if (method === 'PUT') {
        const input = parseJson(body) as { compatibility?: string };
        this.#config.set(a, input.compatibility ?? 'BACKWARD');
        return this.reply(res, 200, { compatibility: input.compatibility ?? 'BACKWARD' });
      }
    }
    this.reply(res, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
  }

  reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  #byId(id: number): StoredSchema {
    const stored = this.#schemas.find((s) => s.id === id);
    if (!stored) throw new Error(`no schema ${id}`);
    return stored;
  }

  #versionBody(subject: string, version: Version) {
    return { subject, version: version.version, ...schemaBody(this.#byId(version.id)), id: version.id };
  }

  /** Like Confluent: one id per distinct (type, schema, references), shared across subjects; re-registering is a no-op. */
  #register(subject: string, schemaType: SchemaType, schema: string, references: readonly SchemaReference[]) {
    const refs = JSON.stringify(references);
    let stored = this.#schemas.find(
      (s) => s.schema === schema && s.schemaType === schemaType && JSON.stringify(s.references) === refs,
    );
    if (!stored) {
      stored = { id: this.#schemas.length + 1, schemaType, schema, references };
      this.#schemas.push(stored);
    }
    const versions = this.#subjects.get(subject) ?? [];
    if (!versions.some((v) => v.id === stored.id)) {
      versions.push({ version: (versions.at(-1)?.version ?? 0) + 1, id: stored.id });
    }
    this.#subjects.set(subject, versions);
    return stored;
  }
}

/** Confluent leaves out `schemaType` for Avro and `references` when there are none. */
function schemaBody(stored: StoredSchema) {
  return {
    schema: stored.schema,
    ...(stored.schemaType !== 'AVRO' && { schemaType: stored.schemaType }),
    ...(stored.references.length > 0 && { references: stored.references }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text || '{}') as unknown;
  } catch {
    return {};
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
