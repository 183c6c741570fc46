/**
 * The simulator's fault switches: what resilience tests, demos and benchmarks turn on to see how the bridge copes.
 * Set at start (SimulatorOptions.faults, `geb simulator` flags) and changed while it runs
 * (GenesysSimulator.setFaults, `PUT`/`PATCH /__simulator/faults`). The defaults inject nothing; the rate limits
 * default to Genesys' own numbers (300 calls a minute per token, 300 agentless emails a minute per organisation).
 */

/** Statuses an API call can be made to fail with at random. */
export const INJECTABLE_STATUSES = ['408', '429', '500', '502', '503', '504'] as const;
export type InjectableStatus = (typeof INJECTABLE_STATUSES)[number];

export interface FaultSettings {
  /** Added before every API and token call is answered, in milliseconds. */
  readonly latencyMs: number;
  /** A random extra delay from 0 to this, on top of latencyMs. */
  readonly latencyJitterMs: number;
  /** Probability (0 to 1) per status that an API call is answered with it instead; they add up to at most 1. */
  readonly failureRates: Readonly<Partial<Record<InjectableStatus, number>>>;
  /** Retry-After (seconds) of injected 429s. */
  readonly retryAfterS: number;
  /** Probability that an API call's connection is destroyed without an answer. */
  readonly dropRate: number;
  /** Probability that an API call is never answered (the client's timeout must fire). */
  readonly hangRate: number;
  /** When not 0, the token endpoint answers every grant with this status (e.g. 503: login unreachable). */
  readonly tokenEndpointStatus: number;
  /** API calls one token may make per window; 0: unlimited. Genesys: 300 a minute. */
  readonly perTokenLimit: number;
  /** Agentless emails per window for the whole organisation, whatever the token; 0: unlimited. Genesys: 300 a minute. */
  readonly orgEmailLimit: number;
  /** The window both limits count in, in milliseconds. Genesys: one minute; tests shorten it. */
  readonly rateWindowMs: number;
  /** Recipient domains (email) or number prefixes (message) whose sends are accepted and then bounce. */
  readonly bounceDomains: readonly string[];
  /** How long after acceptance a bounce shows (Genesys: some 20–25 s, unverified); until then it looks queued. */
  readonly bounceAfterMs: number;
  /** How long after acceptance a delivery shows as delivered. */
  readonly deliverAfterMs: number;
  /** How long a conversation stays invisible to the analytics endpoints (Genesys: some delay, unverified). */
  readonly analyticsDelayMs: number;
  /** When not 0, the analytics endpoints answer with this status (403: no analytics:conversationDetail:view). */
  readonly analyticsStatus: number;
  /** When true, analytics sessions leave `deliveryStatus` out, as agentless sends may (unverified). */
  readonly omitDeliveryStatus: boolean;
}

export const DEFAULT_FAULTS: FaultSettings = Object.freeze({
  latencyMs: 0,
  latencyJitterMs: 0,
  failureRates: Object.freeze({}),
  retryAfterS: 1,
  dropRate: 0,
  hangRate: 0,
  tokenEndpointStatus: 0,
  perTokenLimit: 300,
  orgEmailLimit: 300,
  rateWindowMs: 60_000,
  bounceDomains: Object.freeze([]),
  bounceAfterMs: 0,
  deliverAfterMs: 0,
  analyticsDelayMs: 0,
  analyticsStatus: 0,
  omitDeliveryStatus: false,
});

/**
 * Validates a (partial) fault setting from JSON or flags and lays it over `base`. Throws an Error naming every
 * problem, so an admin call or a command line with a typo is refused rather than half applied.
 */
export function mergeFaults(base: FaultSettings, patch: unknown): FaultSettings {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new Error('faults must be a JSON object');
  }
  const problems: string[] = [];
  const input = patch as Record<string, unknown>;
  const out: Record<string, unknown> = { ...base };
  const numberIn = (key: string, min: number, max: number, integer: boolean) => {
    const value = input[key];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      problems.push(`${key} must be a number from ${min} to ${max}`);
    } else if (integer && !Number.isInteger(value)) {
      problems.push(`${key} must be a whole number`);
    } else {
      out[key] = value;
    }
  };
  numberIn('latencyMs', 0, 600_000, true);
  numberIn('latencyJitterMs', 0, 600_000, true);
  numberIn('retryAfterS', 0, 3_600, true);
  numberIn('dropRate', 0, 1, false);
  numberIn('hangRate', 0, 1, false);
  numberIn('tokenEndpointStatus', 0, 599, true);
  numberIn('perTokenLimit', 0, 1_000_000, true);
  numberIn('orgEmailLimit', 0, 1_000_000, true);
  numberIn('rateWindowMs', 1, 3_600_000, true);
  numberIn('bounceAfterMs', 0, 3_600_000, true);
  numberIn('deliverAfterMs', 0, 3_600_000, true);
  numberIn('analyticsDelayMs', 0, 3_600_000, true);
  numberIn('analyticsStatus', 0, 599, true);
  if (input['omitDeliveryStatus'] !== undefined) {
    if (typeof input['omitDeliveryStatus'] !== 'boolean')
      problems.push('omitDeliveryStatus must be true or false');
    else out['omitDeliveryStatus'] = input['omitDeliveryStatus'];
  }
  if (input['bounceDomains'] !== undefined) {
    const domains = input['bounceDomains'];
    if (!Array.isArray(domains) || !domains.every((d) => typeof d === 'string' && d.trim() !== '')) {
      problems.push('bounceDomains must be a list of domains (or number prefixes)');
    } else {
      out['bounceDomains'] = Object.freeze(domains.map((d: string) => d.trim().toLowerCase()));
    }
  }
  if (input['failureRates'] !== undefined) {
    const rates = input['failureRates'];
    if (!rates || typeof rates !== 'object' || Array.isArray(rates)) {
      problems.push('failureRates must be an object of status → probability');
    } else {
      const parsed: Partial<Record<InjectableStatus, number>> = {};
      for (const [status, rate] of Object.entries(rates as Record<string, unknown>)) {
        if (!(INJECTABLE_STATUSES as readonly string[]).includes(status)) {
          problems.push(`failureRates: status ${status} is not one of ${INJECTABLE_STATUSES.join(', ')}`);
        } else if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
          problems.push(`failureRates.${status} must be a probability from 0 to 1`);
        } else {
          parsed[status as InjectableStatus] = rate;
        }
      }
      if (Object.values(parsed).reduce((a, b) => a + b, 0) > 1 + 1e-9) {
        problems.push('failureRates add up to more than 1');
      }
      out['failureRates'] = Object.freeze(parsed);
    }
  }
  const known = new Set(Object.keys(DEFAULT_FAULTS));
  for (const key of Object.keys(input)) if (!known.has(key)) problems.push(`unknown fault "${key}"`);
  if (problems.length > 0) throw new Error(`invalid faults: ${problems.join('; ')}`);
  return Object.freeze(out) as unknown as FaultSettings;
}

/** What a random draw decided to do to one API call. */
export type InjectedFault = { kind: 'drop' } | { kind: 'hang' } | { kind: 'status'; status: number };

export function drawFault(
  faults: FaultSettings,
  random: () => number = Math.random,
): InjectedFault | undefined {
  let roll = random();
  if (roll < faults.dropRate) return { kind: 'drop' };
  roll -= faults.dropRate;
  if (roll < faults.hangRate) return { kind: 'hang' };
  // An independent draw for statuses, so drop/hang rates do not shift the status rates.
  let statusRoll = random();
  for (const status of INJECTABLE_STATUSES) {
    const rate = faults.failureRates[status] ?? 0;
    if (statusRoll < rate) return { kind: 'status', status: Number(status) };
    statusRoll -= rate;
  }
  return undefined;
}

export function latencyOf(faults: FaultSettings, random: () => number = Math.random): number {
  return faults.latencyMs + Math.round(random() * faults.latencyJitterMs);
}

/**
 * A sliding-window log of call times: how Genesys' "N per minute" is enforced here, and how the simulator measures
 * the highest rate it saw (a test reads that to prove a bridge stayed within a budget). Genesys does not say whether
 * its minute slides or restarts on the clock; sliding is the stricter reading (each fixed minute is one of its
 * windows, at an unknown phase), so a client that passes here passes either way.
 */
export class WindowLog {
  #times: number[] = [];
  #head = 0;
  #max = 0;

  /** Calls within the window ending now. */
  count(now: number, windowMs: number): number {
    this.#prune(now, windowMs);
    return this.#times.length - this.#head;
  }

  /** Milliseconds until the oldest call in the window leaves it. */
  msUntilFree(now: number, windowMs: number): number {
    this.#prune(now, windowMs);
    const oldest = this.#times[this.#head];
    return oldest === undefined ? 0 : Math.max(0, oldest + windowMs - now);
  }

  add(now: number, windowMs: number): void {
    this.#times.push(now);
    this.#max = Math.max(this.#max, this.count(now, windowMs));
  }

  /** The most calls ever seen within one window. */
  get max(): number {
    return this.#max;
  }

  #prune(now: number, windowMs: number): void {
    while (this.#head < this.#times.length && (this.#times[this.#head] ?? 0) <= now - windowMs) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }
}
