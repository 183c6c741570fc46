import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RouteResponse {
  readonly status: number;
  /** Sent as JSON, unless it is a string (sent as text/plain, e.g. Prometheus' exposition format). */
  readonly body: unknown;
  readonly contentType?: string;
  /** Extra response headers (e.g. WWW-Authenticate). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Answers one GET path. Routes are looked up by exact path: add one to serve a new endpoint. */
export type Route = (request: IncomingMessage) => RouteResponse | Promise<RouteResponse>;

export interface AdminServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly routes: Readonly<Record<string, Route>>;
}

/** The admin HTTP server: probes and metrics (open), the delivery history (behind a token). Serves only GET/HEAD. */
export class AdminServer {
  readonly #server: Server;
  #url = '';

  private constructor(routes: Readonly<Record<string, Route>>) {
    this.#server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://admin').pathname;
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      const respond = ({ status, body, contentType, headers }: RouteResponse) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        res.writeHead(status, {
          ...headers,
          'content-type':
            contentType ?? (typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'),
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        respond({ status: 405, body: { message: 'only GET and HEAD are served' } });
        return;
      }
      if (!route) {
        respond({ status: 404, body: { message: `no route ${path}` } });
        return;
      }
      Promise.resolve()
        .then(() => route(req))
        .then(respond, (error: unknown) => {
          respond({
            status: 500,
            body: { message: error instanceof Error ? error.message : 'internal error' },
          });
        });
    });
    // Probes are short requests; idle keep-alive sockets must not hold the shutdown up.
    this.#server.keepAliveTimeout = 5_000;
  }

  static async start(options: AdminServerOptions): Promise<AdminServer> {
    const server = new AdminServer(options.routes);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(options.port, options.host, () => {
        server.#server.off('error', reject);
        resolve();
      });
    });
    const address = server.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    server.#url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
    return server;
  }

  /** Where it listens (a loopback address when bound to every interface). */
  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
