import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Health } from '../health.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface AdminServerOptions {
  readonly host: string;
  /** 0 picks a free port (logged at start). */
  readonly port: number;
  readonly health: Health;
  readonly metrics: Metrics;
}

export type Route = (req: IncomingMessage, url: URL, res: ServerResponse) => Promise<void> | void;

/**
 * The admin HTTP server: /healthz (the process is alive), /readyz (delivering, or why not) and /metrics
 * (Prometheus text). More routes are added with `route()`.
 */
export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #server: Server;
  readonly #routes = new Map<string, Route>();
  #url = '';

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.route('/healthz', (_req, _url, res) => json(res, 200, { status: 'ok' }));
    this.route('/readyz', (_req, _url, res) => {
      const reason = options.health.notReadyReason;
      if (reason) json(res, 503, { status: 'not ready', ...reason });
      else json(res, 200, { status: 'ready' });
    });
    this.route('/metrics', async (_req, _url, res) => {
      const { contentType, body } = await options.metrics.render();
      res.writeHead(200, { 'content-type': contentType }).end(body);
    });
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin');
      const route = req.method === 'GET' ? this.#routes.get(url.pathname) : undefined;
      if (!route) {
        json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
        return;
      }
      Promise.resolve(route(req, url, res)).catch(() => {
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
      });
    });
  }

  route(path: string, handler: Route): void {
    this.#routes.set(path, handler);
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => resolve());
    });
    const { address, port, family } = this.#server.address() as AddressInfo;
    this.#url = `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
    return this.#url;
  }

  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    .end(text);
}
