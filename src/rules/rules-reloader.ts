import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { isBridgeError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { RulesFileError, formatProblem, loadRulesFile, type RulesFileAccess } from './rules-file.js';
import type { RuleSet } from './rule-set.js';

export interface RulesReloaderOptions {
  readonly file: string;
  readonly initial: RuleSet;
  readonly logger: Logger;
  /** How often the rules file and its template files are checked for changes; 0 turns watching off. */
  readonly watchIntervalMs: number;
  /** Topics the consumer subscribed to at start-up: rules for others wait for a restart. */
  readonly subscribedTopics: readonly string[];
  /** Told of every reload's outcome (for geb_rules_reloads_total). */
  readonly onOutcome?: (outcome: 'applied' | 'rejected') => void;
  /** What the operator grants the rules file (template folder, hosts); read from the environment if left out. */
  readonly access?: RulesFileAccess;
}

/**
 * Keeps the current rules, and replaces them when the rules file or one of its template files changes (polled with
 * fs.watchFile, which also sees editors' write-and-rename saves) or when asked (SIGHUP). A replacement is loaded and
 * checked in full before it is swapped in with one assignment, so each event meets either the old set or the new one;
 * an invalid replacement leaves the old rules running and is logged with every problem.
 */
export class RulesReloader {
  readonly #options: RulesReloaderOptions;
  #current: RuleSet;
  #watched: string[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #succeeded = 0;
  #failed = 0;

  constructor(options: RulesReloaderOptions) {
    this.#options = options;
    this.#current = options.initial;
  }

  get current(): RuleSet {
    return this.#current;
  }

  /** Reloads that replaced the rules, and reloads refused because the new file was invalid. */
  get counts(): { readonly succeeded: number; readonly failed: number } {
    return { succeeded: this.#succeeded, failed: this.#failed };
  }

  start(): void {
    this.#watch();
  }

  stop(): void {
    this.#stopped = true;
    for (const file of this.#watched) unwatchFile(file, this.#onChange);
    this.#watched = [];
  }

  /** Loads the file again; resolves true when the new rules are in place. Reloads run one at a time. */
  reload(trigger: string): Promise<boolean> {
    const next = this.#queue.then(() => this.#reload(trigger));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  readonly #onChange = (current: Stats, previous: Stats): void => {
    if (
      current.mtimeMs === previous.mtimeMs &&
      current.ino === previous.ino &&
      current.size === previous.size
    ) {
      return;
    }
    void this.reload('file changed');
  };

  #watch(): void {
    const interval = this.#options.watchIntervalMs;
    if (this.#stopped || interval <= 0) return;
    const files = [this.#options.file, ...this.#current.files];
    for (const file of this.#watched) if (!files.includes(file)) unwatchFile(file, this.#onChange);
    for (const file of files) {
      if (!this.#watched.includes(file)) watchFile(file, { interval, persistent: false }, this.#onChange);
    }
    this.#watched = files;
  }

  async #reload(trigger: string): Promise<boolean> {
    const { file, logger } = this.#options;
    if (this.#stopped) return false;
    let next: RuleSet;
    try {
      next = await loadRulesFile(file, process.env, this.#options.access);
    } catch (error) {
      this.#failed += 1;
      this.#options.onOutcome?.('rejected');
      const problems =
        error instanceof RulesFileError ? error.problems.map((p) => formatProblem(file, p)) : undefined;
      logger.error(
        {
          rulesFile: file,
          trigger,
          code: isBridgeError(error) ? error.code : undefined,
          problems,
          reloadsFailed: this.#failed,
        },
        'rules reload rejected: the new rules file is invalid; the previous rules keep running',
      );
      return false;
    }
    this.#current = next;
    this.#succeeded += 1;
    this.#options.onOutcome?.('applied');
    this.#watch();
    const newTopics = next.topics.filter((t) => !this.#options.subscribedTopics.includes(t));
    logger.info(
      {
        rulesFile: file,
        trigger,
        rules: next.rules.length,
        topics: next.topics,
        reloadsSucceeded: this.#succeeded,
      },
      'rules reloaded',
    );
    if (newTopics.length > 0) {
      logger.warn(
        { topics: newTopics },
        'the new rules name topics the bridge does not consume yet: their rules take effect after a restart',
      );
    }
    return true;
  }
}
