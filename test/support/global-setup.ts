import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startKafkaBroker } from './kafka-broker.js';
import { isolateTempDir } from './temp.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

/** One real broker for the whole run, unless KAFKA_BROKERS names one (e.g. `docker compose up kafka`). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // First, so that the run fails when a test leaves a temp folder behind (checked last, in the teardown).
  const checkTemp = await isolateTempDir();
  const external = process.env['KAFKA_BROKERS'];
  if (external) {
    console.log(`using the Kafka broker(s) in KAFKA_BROKERS: ${external}`);
    project.provide('kafkaBrokers', external);
    return checkTemp;
  }
  const started = Date.now();
  const broker = await startKafkaBroker({ log: (line) => console.log(line) }).catch(
    async (error: unknown) => {
      await checkTemp();
      throw error;
    },
  );
  console.log(`Kafka broker started on ${broker.brokers} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('kafkaBrokers', broker.brokers);
  return async () => {
    await broker.stop();
    await checkTemp();
  };
}
