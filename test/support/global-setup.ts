import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startApicurio } from './apicurio-registry.js';
import { kafkaVersion, startKafkaBroker } from './kafka-broker.js';
import { isolateTempDir } from './temp.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    /** A real registry's Confluent-compatible URL (Apicurio's /apis/ccompat/v7). */
    schemaRegistryUrl: string;
  }
}

const log = (line: string) => console.log(line);

/**
 * One real broker and one real schema registry for the whole run, started side by side, unless KAFKA_BROKERS or
 * SCHEMA_REGISTRY_URL names one (e.g. `docker compose up kafka schema-registry`).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // First, so that the run fails when a test leaves a temp folder behind (checked last, in the teardown).
  const checkTemp = await isolateTempDir();
  const started = Date.now();
  for (const name of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL']) {
    if (process.env[name]) console.log(`using the one in ${name}: ${process.env[name]}`);
  }
  const [kafka, registry] = await Promise.allSettled([
    process.env['KAFKA_BROKERS']
      ? undefined
      : startKafkaBroker({ log }).then(async (b) => timed(`Kafka ${await kafkaVersion()} broker`, b)),
    process.env['SCHEMA_REGISTRY_URL']
      ? undefined
      : startApicurio({ log }).then((r) => timed(`Apicurio Registry ${r.version}`, r)),
  ]);
  const stop = () => Promise.all([ready(kafka)?.stop(), ready(registry)?.stop()]).then(() => checkTemp());
  if (kafka.status === 'rejected' || registry.status === 'rejected') {
    await stop();
    throw kafka.status === 'rejected' ? kafka.reason : (registry as PromiseRejectedResult).reason;
  }
  project.provide('kafkaBrokers', kafka.value?.brokers ?? process.env['KAFKA_BROKERS']!);
  project.provide('schemaRegistryUrl', registry.value?.url ?? process.env['SCHEMA_REGISTRY_URL']!);
  return stop;

  function timed<T extends { brokers: string } | { url: string }>(what: string, service: T): T {
    const where = 'brokers' in service ? service.brokers : service.url;
    console.log(`${what} started on ${where} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return service;
  }
}

function ready<T>(result: PromiseSettledResult<T>): T | undefined {
  return result.status === 'fulfilled' ? result.value : undefined;
}
