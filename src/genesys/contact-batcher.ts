import { isBridgeError } from '../errors.js';
import { CONTACTS_PER_REQUEST } from './actions.js';
import type { Waits } from '../wait.js';
import type { GenesysRequest, GenesysResponse } from './client.js';
import { GENESYS_LIMITS } from './limits.js';

/** What the pipeline sends through: the Genesys client, or this batcher in front of it. */
export interface GenesysSender {
  send(request: GenesysRequest, signal?: AbortSignal, hooks?: Waits): Promise<GenesysResponse>;
}

export interface ContactBatcherOptions {
  /** How long the first contact of a batch waits for others to the same list. */
  readonly windowMs?: number;
  readonly maxContacts?: number;
  /** Genesys' request body limit; a batch is split before its JSON would exceed it. */
  readonly maxBodyBytes?: number;
}

interface Pending {
  readonly contacts: unknown[];
  /** Bytes of `contacts` as JSON: their share of the batch's body is never more. */
  readonly bytes: number;
  readonly signal: AbortSignal | undefined;
  resolve(response: GenesysResponse): void;
  reject(error: unknown): void;
}

const CONTACTS_PATH = /^\/api\/v2\/outbound\/contactlists\/[^/]+\/contacts(\?.*)?$/;

/**
 * Campaign contacts for the same list (same path, same query options) are sent together, up to Genesys' per-request
 * limit, within a short window: one call instead of hundreds. Every other request passes straight through. Each
 * caller's promise settles when its batch's call does, with its own contact's part of the answer, so the pipeline's
 * retry and dead-letter decisions stay per event. When Genesys refuses a batch as invalid, its contacts are sent
 * again one by one so that one bad contact fails only its own event.
 */
export class ContactBatcher implements GenesysSender {
  readonly #next: GenesysSender;
  readonly #windowMs: number;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #queues = new Map<string, { pending: Pending[]; timer: NodeJS.Timeout }>();

  constructor(next: GenesysSender, options: ContactBatcherOptions = {}) {
    this.#next = next;
    this.#windowMs = options.windowMs ?? 100;
    this.#max = options.maxContacts ?? CONTACTS_PER_REQUEST;
    this.#maxBytes = options.maxBodyBytes ?? GENESYS_LIMITS.requestBodyBytes;
  }

  send(request: GenesysRequest, signal?: AbortSignal, hooks?: Waits): Promise<GenesysResponse> {
    if (!CONTACTS_PATH.test(request.path) || !Array.isArray(request.body)) {
      return this.#next.send(request, signal, hooks);
    }
    const contacts = request.body as unknown[];
    const bytes = Buffer.byteLength(JSON.stringify(contacts));
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(request.path);
      // This contact would push the waiting batch past the size limit: that batch goes now, this one starts the next.
      if (queue && queue.pending.reduce((n, p) => n + p.bytes, 0) + bytes > this.#maxBytes) {
        this.#flush(request.path);
        queue = undefined;
      }
      if (!queue) {
        queue = { pending: [], timer: setTimeout(() => this.#flush(request.path), this.#windowMs) };
        this.#queues.set(request.path, queue);
      }
      queue.pending.push({ contacts, bytes, signal, resolve, reject });
      if (queue.pending.reduce((n, p) => n + p.contacts.length, 0) >= this.#max) this.#flush(request.path);
    });
  }

  #flush(path: string): void {
    const queue = this.#queues.get(path);
    if (!queue) return;
    clearTimeout(queue.timer);
    this.#queues.delete(path);
    // A full batch may hold a little more than the limit when the last caller brought several contacts: split.
    // Likewise when the body would pass Genesys' size limit: a batch Genesys refuses costs a call per contact.
    let batch: Pending[] = [];
    let size = 0;
    let bytes = 0;
    for (const pending of queue.pending) {
      if (
        size > 0 &&
        (size + pending.contacts.length > this.#max || bytes + pending.bytes > this.#maxBytes)
      ) {
        void this.#sendBatch(path, batch);
        batch = [];
        size = 0;
        bytes = 0;
      }
      batch.push(pending);
      size += pending.contacts.length;
      bytes += pending.bytes;
    }
    if (batch.length > 0) void this.#sendBatch(path, batch);
  }

  async #sendBatch(path: string, batch: Pending[]): Promise<void> {
    const body = batch.flatMap((p) => p.contacts);
    try {
      const response = await this.#next.send({ method: 'POST', path, body }, batch[0]?.signal);
      const items = Array.isArray(response.body['items']) ? (response.body['items'] as unknown[]) : [];
      let offset = 0;
      for (const pending of batch) {
        const own = items.slice(offset, offset + pending.contacts.length);
        offset += pending.contacts.length;
        pending.resolve({ ...response, body: { items: own } });
      }
    } catch (error) {
      if (batch.length > 1 && isBridgeError(error) && error.disposition === 'dead-letter') {
        await Promise.all(
          batch.map((p) =>
            this.#next.send({ method: 'POST', path, body: p.contacts }, p.signal).then(
              (response) => p.resolve(response),
              (error: unknown) => p.reject(error),
            ),
          ),
        );
        return;
      }
      for (const pending of batch) pending.reject(error);
    }
  }
}
