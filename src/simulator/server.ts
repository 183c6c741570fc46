import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorBody } from './error-body.js';
import {
  DEFAULT_FAULTS,
  WindowLog,
  drawFault,
  latencyOf,
  mergeFaults,
  type FaultSettings,
} from './faults.js';
import { ConversationStore } from './conversations.js';
import {
  hasMediaType,
  validateAgentlessEmail,
  validateAgentlessMessage,
  validateContacts,
} from './validation.js';

/**
 * A Genesys Cloud simulator: the token endpoint and the agentless actions, speaking the contracts in GENESYS.md over
 * real HTTP. It is a product feature (local development, the demo, tests, benchmarks), not a test double: the bridge
 * talks to it exactly as it talks to Genesys, through GENESYS_API_URL and GENESYS_LOGIN_URL.
 *
 * Admin endpoints under /__simulator/ let tests read what it received:
 *   GET    /__simulator/requests[?path=/api/v2/...]   what it received, oldest first
 *   DELETE /__simulator/requests                      forget it
 *   GET    /__simulator/faults                        the fault switches in force (faults.ts)
 *   PUT    /__simulator/faults                        replace them (JSON; what is left out takes its default)
 *   PATCH  /__simulator/faults                        change only the switches given
 *   GET    /__simulator/stats                         counters: requests per path and status, accepted per client,
 *                                                     the most calls seen in one rate window (per token, org emails)
 *   DELETE /__simulator/tokens                        revoke every issued token
 *   PATCH  /__simulator/tokens                        {"lifetimeS": N}: expires_in of tokens issued from now on
 *   GET    /__simulator/conversations                 the accepted emails and messages it remembers (conversations.ts)
 */

export interface SimulatorClient {
  readonly id: string;
  readonly secret: string;
}

export interface SimulatorOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** OAuth clients the token endpoint accepts. */
  readonly clients?: readonly SimulatorClient[];
  /** `expires_in` of issued tokens. Genesys allows 300 to 172800 s; the default is Genesys' 86400. */
  readonly tokenLifetimeS?: number;
  /** Genesys' status for invalid_client is unverified (400 or 401); the bridge must handle both. */
  readonly invalidClientStatus?: 400 | 401;
  /**
   * Domains the organisation has as Campaign-type email domains: an agentless email from any other domain is refused
   * with a 400, as Genesys does. Left out: every domain is accepted.
   */
  readonly senderDomains?: readonly string[];
  /** Fixed delay before answering each API call (not the token endpoint), like a real network and backend. */
  readonly latencyMs?: number;
  /** Fault switches in force from the start (faults.ts); left out: none, and Genesys' rate limits. */
  readonly faults?: Partial<FaultSettings>;
}

export interface SimulatorStats {
  /** Path → HTTP status (or `dropped`, `hung`) → how many. */
  readonly requests: Record<string, Record<string, number>>;
  /** OAuth client id → API calls answered 2xx. */
  readonly acceptedByClient: Record<string, number>;
  /** The most API calls one token made within one rate window. */
  readonly maxCallsPerTokenInWindow: number;
  /** The most agentless emails the organisation received (all tokens together) within one rate window. */
  readonly maxOrgEmailsInWindow: number;
  readonly rateWindowMs: number;
  readonly tokensIssued: number;
}

export interface ReceivedRequest {
  readonly seq: number;
  readonly receivedAt: string;
  /**
   * When the request arrived (epoch ms), before its body was read and before any injected latency: what a caller's
   * own delay is measured to. `receivedAt` is when it was answered, latency included.
   */
  readonly arrivedAtMs: number;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly correlationId: string;
  /** The OAuth client whose token authorised the call, or that asked for a token. */
  readonly clientId: string | undefined;
  /** The parsed JSON body (API calls only; token requests are recorded without their credentials). */
  readonly body?: unknown;
  /** What the simulator answered (API calls only). */
  readonly response?: unknown;
  /** The W3C `traceparent` header the caller propagated, if any. */
  readonly traceparent?: string;
  /** Set when a fault switch, not the contract, decided the answer (status 0: no answer at all). */
  readonly fault?: 'injected' | 'rate-limited' | 'dropped' | 'hung';
}

export const DEFAULT_SIMULATOR_CLIENT: SimulatorClient = {
  id: 'geb-local-client',
  secret: 'geb-local-secret',
};

const MAX_REQUEST_BYTES = 512_000;
const AGENTLESS_EMAIL = '/api/v2/conversations/emails/agentless';
const AGENTLESS_MESSAGE = '/api/v2/conversations/messages/agentless';

interface IssuedToken {
  readonly clientId: string;
  readonly expiresAtMs: number;
}

export class GenesysSimulator {
  readonly #server: Server;
  readonly #clients = new Map<string, string>();
  readonly #tokens = new Map<string, IssuedToken>();
  /** Arrival time of each request still open, by correlation id. */
  readonly #arrivals = new Map<string, number>();
  readonly #received: ReceivedRequest[] = [];
  #tokenLifetimeS: number;
  readonly #invalidClientStatus: 400 | 401;
  readonly #senderDomains: readonly string[] | undefined;
  #seq = 0;
  #tokensIssued = 0;
  #url = '';
  #apiCallsInFlight = 0;
  #maxApiCallsInFlight = 0;
  #faults: FaultSettings;
  readonly #tokenWindows = new Map<string, WindowLog>();
  readonly #orgEmails = new WindowLog();
  #maxPerToken = 0;
  readonly #conversations = new ConversationStore();

  private constructor(options: SimulatorOptions) {
    // `latencyMs` is a shorthand for the fault switch of the same name.
    this.#faults = mergeFaults(DEFAULT_FAULTS, {
      ...(options.latencyMs !== undefined && { latencyMs: options.latencyMs }),
      ...options.faults,
    });
    for (const client of options.clients ?? [DEFAULT_SIMULATOR_CLIENT])
      this.#clients.set(client.id, client.secret);
    this.#tokenLifetimeS = options.tokenLifetimeS ?? 86_400;
    this.#invalidClientStatus = options.invalidClientStatus ?? 401;
    this.#senderDomains = options.senderDomains?.map((d) => d.toLowerCase());
    this.#server = createServer((req, res) => {
      this.#route(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          this.#json(res, 500, errorBody(500, 'internal.server.error', String(error), randomUUID()));
      });
    });
    this.#server.keepAliveTimeout = 30_000;
  }

  static async start(options: SimulatorOptions = {}): Promise<GenesysSimulator> {
    const simulator = new GenesysSimulator(options);
    await new Promise<void>((resolve, reject) => {
      simulator.#server.once('error', reject);
      simulator.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    const address = simulator.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    simulator.#url = `http://${host}:${address.port}`;
    return simulator;
  }

  /** Base URL: both GENESYS_API_URL and GENESYS_LOGIN_URL point here. */
  get url(): string {
    return this.#url;
  }

  received(path?: string): ReceivedRequest[] {
    return this.#received.filter((r) => path === undefined || r.path === path);
  }

  clearReceived(): void {
    this.#received.length = 0;
  }

  /** Adds or changes an OAuth client, e.g. to "fix" credentials while a bridge is paused on invalid_client. */
  setClient(client: SimulatorClient): void {
    this.#clients.set(client.id, client.secret);
  }

  setTokenLifetime(seconds: number): void {
    this.#tokenLifetimeS = seconds;
  }

  /** Every issued token stops working at once, as after `DELETE /api/v2/tokens/me`. */
  revokeTokens(): void {
    this.#tokens.clear();
    this.#tokenWindows.clear();
  }

  get faults(): FaultSettings {
    return this.#faults;
  }

  /**
   * Changes fault switches while running. `replace` starts from the defaults (no faults); otherwise only the given
   * switches change. Throws, changing nothing, on an unknown or out-of-range switch.
   */
  setFaults(faults: Partial<FaultSettings>, { replace = false } = {}): FaultSettings {
    this.#faults = mergeFaults(replace ? DEFAULT_FAULTS : this.#faults, faults);
    return this.#faults;
  }

  stats(): SimulatorStats {
    const requests: Record<string, Record<string, number>> = {};
    const acceptedByClient: Record<string, number> = {};
    for (const r of this.#received) {
      const byStatus = (requests[r.path] ??= {});
      const status = r.fault === 'dropped' || r.fault === 'hung' ? r.fault : String(r.status);
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (r.path.startsWith('/api/') && r.status >= 200 && r.status < 300 && r.clientId !== undefined) {
        acceptedByClient[r.clientId] = (acceptedByClient[r.clientId] ?? 0) + 1;
      }
    }
    return {
      requests,
      acceptedByClient,
      maxCallsPerTokenInWindow: this.#maxPerToken,
      maxOrgEmailsInWindow: this.#orgEmails.max,
      rateWindowMs: this.#faults.rateWindowMs,
      tokensIssued: this.#tokensIssued,
    };
  }

  /** The most API calls it was answering at the same time: how concurrent the client was. */
  get maxConcurrentApiCalls(): number {
    return this.#maxApiCallsInFlight;
  }

  /** How many tokens the token endpoint issued. */
  get tokensIssued(): number {
    return this.#tokensIssued;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const correlationId = randomUUID();
    this.#arrivals.set(correlationId, Date.now());
    res.once('close', () => this.#arrivals.delete(correlationId));
    res.setHeader('ININ-Correlation-Id', correlationId);
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const raw = await readBody(req);

    if (path.startsWith('/__simulator/')) return this.#admin(req.method ?? 'GET', path, url, res, raw);
    if (raw === undefined) {
      return this.#json(
        res,
        413,
        errorBody(
          413,
          'request.entity.too.large',
          `The request body exceeds ${MAX_REQUEST_BYTES} bytes.`,
          correlationId,
        ),
      );
    }
    if (path.startsWith('/api/')) {
      // Counted before the injected latency, which is part of the call as the client sees it.
      this.#apiCallsInFlight += 1;
      this.#maxApiCallsInFlight = Math.max(this.#maxApiCallsInFlight, this.#apiCallsInFlight);
      res.once('close', () => (this.#apiCallsInFlight -= 1));
    }
    if (await this.#injectFaults(req, res, path, correlationId)) return;
    if (req.method === 'POST' && path === '/oauth/token') return this.#token(req, raw, res, correlationId);
    if (req.method === 'POST' && (path === AGENTLESS_EMAIL || path === AGENTLESS_MESSAGE)) {
      return this.#agentless(req, raw, res, correlationId, path);
    }
    const status = this.#conversations.answer(
      req.method ?? 'GET',
      path,
      url,
      raw,
      this.#faults,
      correlationId,
    );
    if (status) return this.#statusAnswer(req, res, `${path}${url.search}`, correlationId, status);
    const contactList = /^\/api\/v2\/outbound\/contactlists\/([^/]+)\/contacts$/.exec(path)?.[1];
    if (req.method === 'POST' && contactList !== undefined) {
      const listId = decodeURIComponent(contactList);
      // Recorded with its query (priority, clearSystemData, doNotQueue): part of what the caller asked for.
      return this.#api(
        req,
        raw,
        res,
        correlationId,
        `${path}${url.search}`,
        (body) => validateContacts(body, listId),
        (body) =>
          (body as unknown as Record<string, unknown>[]).map((contact) => ({
            id: typeof contact['id'] === 'string' ? contact['id'] : randomUUID(),
            contactListId: listId,
            data: contact['data'],
            callable: contact['callable'] ?? true,
          })),
      );
    }
    this.#json(res, 404, errorBody(404, 'not.found', `No route for ${req.method} ${path}.`, correlationId));
  }

  /** The agentless email and message APIs: validated as Genesys does, answered with new conversation ids. */
  #agentless(
    req: IncomingMessage,
    raw: string,
    res: ServerResponse,
    correlationId: string,
    path: string,
  ): void {
    if (path === AGENTLESS_EMAIL) {
      const validate = (body: unknown) => [
        ...validateAgentlessEmail(body),
        ...this.#senderDomainProblems(body),
      ];
      return this.#api(req, raw, res, correlationId, path, validate, (body) => ({
        id: randomUUID(),
        conversationId: randomUUID(),
        senderType: body['senderType'],
        fromAddress: body['fromAddress'],
        toAddresses: body['toAddresses'],
        ...(body['replyToAddress'] !== undefined && { replyToAddress: body['replyToAddress'] }),
        ...(body['subject'] !== undefined && { subject: body['subject'] }),
        dateCreated: new Date().toISOString(),
      }));
    }
    return this.#api(req, raw, res, correlationId, path, validateAgentlessMessage, (body) => ({
      id: randomUUID(),
      conversationId: randomUUID(),
      fromAddress: body['fromAddress'],
      toAddress: body['toAddress'],
      messengerType: body['toAddressMessengerType'],
      ...(body['textBody'] !== undefined && { textBody: body['textBody'] }),
      ...(body['messagingTemplate'] !== undefined && { messagingTemplate: body['messagingTemplate'] }),
      timestamp: new Date().toISOString(),
    }));
  }

  #token(req: IncomingMessage, raw: string, res: ServerResponse, correlationId: string): void {
    const credentials = parseBasic(req.headers.authorization);
    const form = new URLSearchParams(raw);
    const record = (status: number) =>
      this.#record({
        method: 'POST',
        path: '/oauth/token',
        status,
        correlationId,
        clientId: credentials?.id,
      });
    // The grant is a form (GENESYS.md): a body of another type is not read as one.
    if (!hasMediaType(req.headers['content-type'], 'application/x-www-form-urlencoded')) {
      record(400);
      return this.#json(res, 400, {
        error: 'invalid_request',
        description: 'Content-Type must be application/x-www-form-urlencoded',
        error_description: 'Content-Type must be application/x-www-form-urlencoded',
      });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      record(400);
      return this.#json(res, 400, {
        error: 'unsupported_grant_type',
        description: 'grant type is not supported',
        error_description: 'grant type is not supported',
      });
    }
    if (!credentials || this.#clients.get(credentials.id) !== credentials.secret) {
      record(this.#invalidClientStatus);
      return this.#json(res, this.#invalidClientStatus, {
        error: 'invalid_client',
        description: 'authentication failed',
        error_description: 'authentication failed',
      });
    }
    const token = randomBytes(32).toString('base64url');
    this.#tokens.set(token, {
      clientId: credentials.id,
      expiresAtMs: Date.now() + this.#tokenLifetimeS * 1000,
    });
    this.#tokensIssued += 1;
    record(200);
    this.#json(res, 200, { access_token: token, token_type: 'bearer', expires_in: this.#tokenLifetimeS });
  }

  #api(
    req: IncomingMessage,
    raw: string,
    res: ServerResponse,
    correlationId: string,
    path: string,
    validate: (body: unknown) => { fieldName: string; errorCode: string }[],
    respond: (body: Record<string, unknown>) => Record<string, unknown> | Record<string, unknown>[],
  ): void {
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const issued = bearer === undefined ? undefined : this.#tokens.get(bearer);
    const traceparent = headerValue(req.headers, 'traceparent');
    const record = (status: number, body: unknown, response: unknown) =>
      this.#record({
        method: 'POST',
        path,
        status,
        correlationId,
        clientId: issued?.clientId,
        body,
        response,
        ...(traceparent !== undefined && { traceparent }),
      });

    const checked = checkApiCall(req, raw, bearer, issued, correlationId, validate);
    if ('error' in checked) {
      record(checked.status, checked.body, checked.error);
      return this.#json(res, checked.status, checked.error);
    }
    const { body } = checked;
    const answer = respond(body as Record<string, unknown>);
    if (!Array.isArray(answer) && (path === AGENTLESS_EMAIL || path === AGENTLESS_MESSAGE)) {
      this.#conversations.remember(
        path === AGENTLESS_EMAIL ? 'email' : 'message',
        answer,
        body as Record<string, unknown>,
        this.#faults,
      );
    }
    const response = Array.isArray(answer) ? answer : { ...answer, selfUri: `${path}/${correlationId}` };
    record(200, body, response);
    this.#json(res, 200, response);
  }

  /**
   * Applies the fault switches and the rate limits before the contract is served. Returns true when it answered
   * (or chose never to answer). Order as Genesys: latency, transport faults, authentication (left to the route),
   * then the per-token limit, then the organisation's email budget.
   */
  async #injectFaults(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    correlationId: string,
  ): Promise<boolean> {
    const faults = this.#faults;
    const method = req.method ?? 'GET';
    // Latency is a property of the API, like Genesys' own; the token endpoint answers at once.
    const delayMs = path.startsWith('/api/') ? latencyOf(faults) : 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (path === '/oauth/token') {
      if (faults.tokenEndpointStatus === 0) return false;
      const status = faults.tokenEndpointStatus;
      this.#record({ method, path, status, correlationId, clientId: undefined, fault: 'injected' });
      this.#json(res, status, {
        error: 'temporarily_unavailable',
        description: 'injected fault',
        error_description: 'injected fault',
      });
      return true;
    }
    if (!path.startsWith('/api/')) return false;

    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const issued = bearer === undefined ? undefined : this.#tokens.get(bearer);
    const valid = issued !== undefined && issued.expiresAtMs > Date.now() ? issued : undefined;
    const record = (status: number, fault: ReceivedRequest['fault'], response?: unknown) =>
      this.#record({ method, path, status, correlationId, clientId: valid?.clientId, fault, response });

    const fault = drawFault(faults);
    if (fault?.kind === 'drop') {
      record(0, 'dropped');
      req.socket.destroy();
      return true;
    }
    if (fault?.kind === 'hang') {
      record(0, 'hung');
      return true;
    }
    if (fault?.kind === 'status') {
      if (fault.status === 429) {
        this.#tooManyRequests(res, faults.retryAfterS, correlationId, (body) =>
          record(429, 'injected', body),
        );
        return true;
      }
      const body = errorBody(
        fault.status,
        fault.status === 408 ? 'request.timeout' : 'service.unavailable',
        'The service is currently unavailable (injected fault).',
        correlationId,
      );
      record(fault.status, 'injected', body);
      this.#json(res, fault.status, body);
      return true;
    }
    if (valid === undefined || bearer === undefined) return false;

    const now = Date.now();
    const windowMs = faults.rateWindowMs;
    let window = this.#tokenWindows.get(bearer);
    if (!window) {
      window = new WindowLog();
      this.#tokenWindows.set(bearer, window);
    }
    if (faults.perTokenLimit > 0 && window.count(now, windowMs) >= faults.perTokenLimit) {
      const retryAfterS = Math.max(1, Math.ceil(window.msUntilFree(now, windowMs) / 1000));
      this.#tooManyRequests(res, retryAfterS, correlationId, (body) => record(429, 'rate-limited', body));
      return true;
    }
    window.add(now, windowMs);
    this.#maxPerToken = Math.max(this.#maxPerToken, window.max);

    if (method === 'POST' && path === AGENTLESS_EMAIL) {
      if (faults.orgEmailLimit > 0 && this.#orgEmails.count(now, windowMs) >= faults.orgEmailLimit) {
        const retryAfterS = Math.max(1, Math.ceil(this.#orgEmails.msUntilFree(now, windowMs) / 1000));
        this.#tooManyRequests(res, retryAfterS, correlationId, (body) => record(429, 'rate-limited', body));
        return true;
      }
      this.#orgEmails.add(now, windowMs);
    }
    return false;
  }

  /** A status or analytics answer (conversations.ts), behind the same bearer check as every API call. */
  #statusAnswer(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    correlationId: string,
    answer: { status: number; body: unknown; method: string },
  ): void {
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const issued = bearer === undefined ? undefined : this.#tokens.get(bearer);
    const valid = issued !== undefined && issued.expiresAtMs > Date.now();
    const status = valid ? answer.status : 401;
    const body = valid
      ? answer.body
      : errorBody(401, 'bad.credentials', 'Invalid login credentials.', correlationId);
    this.#record({
      method: answer.method,
      path,
      status,
      correlationId,
      clientId: issued?.clientId,
      response: body,
    });
    this.#json(res, status, body);
  }

  /** Genesys' 429: Retry-After in seconds, and the same number in brackets in the message. */
  #tooManyRequests(
    res: ServerResponse,
    retryAfterS: number,
    correlationId: string,
    record: (body: unknown) => void,
  ): void {
    const body = errorBody(
      429,
      'too.many.requests.retry.after',
      `Rate limit exceeded the maximum. Retry the request in [${retryAfterS}] seconds`,
      correlationId,
    );
    record(body);
    res.setHeader('Retry-After', String(retryAfterS));
    this.#json(res, 429, body);
  }

  /** Genesys sends agentless email only from the organisation's Campaign-type domains. */
  #senderDomainProblems(body: unknown): { fieldName: string; errorCode: string }[] {
    const allowed = this.#senderDomains;
    if (!allowed) return [];
    const from = (body as { fromAddress?: { email?: unknown } } | null)?.fromAddress?.email;
    const domain = typeof from === 'string' ? from.slice(from.lastIndexOf('@') + 1).toLowerCase() : '';
    return allowed.includes(domain)
      ? []
      : [{ fieldName: 'fromAddress.email', errorCode: 'DOMAIN_NOT_CAMPAIGN_TYPE' }];
  }

  #admin(method: string, path: string, url: URL, res: ServerResponse, raw?: string): void {
    if (path === '/__simulator/faults' && method === 'GET') return this.#json(res, 200, this.#faults);
    if (path === '/__simulator/faults' && (method === 'PUT' || method === 'PATCH')) {
      try {
        const patch = JSON.parse(raw ?? '') as Partial<FaultSettings>;
        return this.#json(res, 200, this.setFaults(patch, { replace: method === 'PUT' }));
      } catch (error) {
        return this.#json(res, 400, { message: (error as Error).message });
      }
    }
    if (path === '/__simulator/stats' && method === 'GET') return this.#json(res, 200, this.stats());
    if (path === '/__simulator/conversations' && method === 'GET') {
      return this.#json(res, 200, this.#conversations.all());
    }
    if (path === '/__simulator/tokens' && method === 'PATCH') {
      let lifetimeS: unknown;
      try {
        lifetimeS = (JSON.parse(raw || '{}') as { lifetimeS?: unknown }).lifetimeS;
      } catch {
        lifetimeS = undefined;
      }
      if (typeof lifetimeS !== 'number' || !Number.isInteger(lifetimeS) || lifetimeS < 1) {
        return this.#json(res, 400, { message: 'lifetimeS must be a positive whole number of seconds' });
      }
      this.setTokenLifetime(lifetimeS);
      return this.#json(res, 200, { lifetimeS });
    }
    if (path === '/__simulator/tokens' && method === 'DELETE') {
      this.revokeTokens();
      res.writeHead(204).end();
      return;
    }
    if (path === '/__simulator/requests' && method === 'GET') {
      return this.#json(res, 200, this.received(url.searchParams.get('path') ?? undefined));
    }
    if (path === '/__simulator/requests' && method === 'DELETE') {
      this.clearReceived();
      res.writeHead(204).end();
      return;
    }
    this.#json(res, 404, { message: `no admin route ${method} ${path}` });
  }

  #record(entry: Omit<ReceivedRequest, 'seq' | 'receivedAt' | 'arrivedAtMs'>): void {
    this.#seq += 1;
    const now = Date.now();
    const arrivedAtMs = this.#arrivals.get(entry.correlationId) ?? now;
    this.#received.push({ seq: this.#seq, receivedAt: new Date(now).toISOString(), arrivedAtMs, ...entry });
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/** The body as text, or undefined when it exceeds Genesys' request size limit. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
  }
  return size > MAX_REQUEST_BYTES ? undefined : Buffer.concat(chunks).toString('utf8');
}

function parseBasic(header: string | undefined): SimulatorClient | undefined {
  const encoded = /^Basic (.+)$/i.exec(header ?? '')?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** Node's headers are lower-cased; a repeated header reads as its first value. */
function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The checks every API call passes before its contract is served: bearer token, content type, JSON, fields. */
function checkApiCall(
  req: IncomingMessage,
  raw: string,
  bearer: string | undefined,
  issued: { readonly expiresAtMs: number } | undefined,
  correlationId: string,
  validate: (body: unknown) => { fieldName: string; errorCode: string }[],
): { readonly status: number; readonly error: unknown; readonly body: unknown } | { readonly body: unknown } {
  if (!issued || issued.expiresAtMs <= Date.now()) {
    const error =
      bearer === undefined
        ? errorBody(
            401,
            'authentication.required',
            'No authentication bearer token specified in authorization header.',
            correlationId,
          )
        : errorBody(401, 'bad.credentials', 'Invalid login credentials.', correlationId);
    return { status: 401, error, body: undefined };
  }
  if (!hasMediaType(req.headers['content-type'], 'application/json')) {
    const error = errorBody(
      415,
      'unsupported.media.type',
      'The request Content-Type must be application/json.',
      correlationId,
    );
    return { status: 415, error, body: undefined };
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    const error = errorBody(
      400,
      'bad.request',
      'The request could not be understood by the server due to malformed syntax.',
      correlationId,
    );
    return { status: 400, error, body: undefined };
  }
  const problems = validate(body);
  if (problems.length > 0) {
    const error = errorBody(
      400,
      'bad.request',
      `Invalid request: ${problems.map((p) => `${p.fieldName} (${p.errorCode})`).join(', ')}`,
      correlationId,
      problems.map((p) => ({ fieldName: p.fieldName, errorCode: p.errorCode })),
    );
    return { status: 400, error, body };
  }
  return { body };
}
