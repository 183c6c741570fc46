import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A package loaded on first use rather than at start-up. The PostgreSQL, Redis, OpenTelemetry SDK and schema registry
 * clients each cost 10–25 MB of resident memory once loaded, and most deployments use only some of them: a bridge
 * with a file ledger, no Redis and tracing off starts some 50 MB smaller. CommonJS packages only (require is sync).
 */
export function lazyPackage<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
