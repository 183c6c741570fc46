import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { kafkaVersion, startKafkaBroker } from './kafka-broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

/** One real broker for the whole run, unless KAFKA_BROKERS names one (e.g. `docker compose up kafka`). */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = process.env['KAFKA_BROKERS'];
  if (external) {
    console.log(`using the Kafka broker(s) in KAFKA_BROKERS: ${external}`);
    project.provide('kafkaBrokers', external);
    return undefined;
  }
  const started = Date.now();
  const broker = await startKafkaBroker({ log: (line) => console.log(line) });
  console.log(
    `Kafka ${await kafkaVersion()} broker started on ${broker.brokers} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  project.provide('kafkaBrokers', broker.brokers);
  return () => broker.stop();
}
