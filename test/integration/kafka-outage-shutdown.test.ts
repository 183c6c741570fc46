import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, type ChildBridge, simulatorEnv, writeEmailRule } from '../support/bridge.js';
import { uniqueName, waitFor } from '../support/kafka.js';
import { startKafkaBroker, type KafkaBroker } from '../support/kafka-broker.js';

const GRACE_MS = 2_000;
const CLOSE_TIMEOUT_MS = 5_000;
const BOUND_MS = GRACE_MS + CLOSE_TIMEOUT_MS;
/** Signal delivery and event-loop lag on a loaded 2-core machine: the bound itself is what is asserted. */
const SLACK_MS = 5_000;
/** kafkajs gives up on a lost broker after its retries (about 10 s), then logs that it restarts the consumer. */
const CRASH_WAIT_MS = 90_000;
/** A broker outage, kafkajs giving up on it and a broker restart: far past vitest's 60 s on a loaded machine. */
const TEST_TIMEOUT_MS = 300_000;

/**
 * A stopped bridge stops, whatever Kafka does (issue 21). Each test has a broker of its own, halted and restarted on
 * the same port and log directory, and runs `geb run` as a child process, as users do.
 */
describe(
  'stopping during a Kafka outage (own broker, geb run as a child process)',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    let broker: KafkaBroker | undefined;
    let simulator: GenesysSimulator | undefined;
    let bridge: ChildBridge | undefined;
    let topic: string;
    let groupId: string;

    const admin = () =>
      new Kafka({
        clientId: 'geb-test',
        brokers: [broker?.brokers ?? ''],
        logLevel: logLevel.NOTHING,
      }).admin();

    beforeEach(async () => {
      broker = await startKafkaBroker();
      simulator = await GenesysSimulator.start();
      topic = uniqueName('outage.orders');
      groupId = uniqueName('geb-outage');
      const client = admin();
      await client.connect();
      try {
        await client.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
      } finally {
        await client.disconnect();
      }
    });

    afterEach(async () => {
      await bridge?.stop('SIGKILL');
      bridge = undefined;
      await simulator?.close();
      await broker?.stop();
    });

    const start = async () => {
      const rulesFile = await writeEmailRule({ name: 'receipt', topic, to: '{{ email }}', text: 'Thanks.' });
      const child = spawnBridge({
        KAFKA_BROKERS: broker?.brokers ?? '',
        KAFKA_GROUP_ID: groupId,
        RULES_FILE: rulesFile,
        ...(simulator && simulatorEnv(simulator)),
        // The group forgets the member that was in it when the broker went down within seconds of its return.
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        SHUTDOWN_GRACE_MS: String(GRACE_MS),
        SHUTDOWN_CLOSE_TIMEOUT_MS: String(CLOSE_TIMEOUT_MS),
      });
      bridge = child;
      await waitFor(() => child.output().includes('joined consumer group'), {
        timeoutMs: 60_000,
        what: `the bridge to join the group\n${child.output()}`,
      });
      return child;
    };

    const adminUrl = (child: ChildBridge) => {
      const line = child
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; url?: string })
        .find((r) => r.msg?.startsWith('admin server listening'));
      if (!line?.url) throw new Error(`no admin URL logged:\n${child.output()}`);
      return line.url;
    };

    /** SIGTERM, then how long until the process was gone and with which code (null: it outlived the bound). */
    const terminate = async (child: ChildBridge) => {
      const sent = Date.now();
      const outlived = new Promise<'outlived'>((resolve) =>
        setTimeout(() => resolve('outlived'), BOUND_MS + SLACK_MS).unref(),
      );
      void child.stop('SIGTERM');
      const code = await Promise.race([child.exited, outlived]);
      return { code, elapsedMs: Date.now() - sent };
    };

    const members = async () => {
      const client = admin();
      await client.connect();
      try {
        const { groups } = await client.describeGroups([groupId]);
        return groups[0]?.members.length ?? 0;
      } finally {
        await client.disconnect();
      }
    };

    it('SIGTERM while the broker is down: not ready with the reason, restarts counted, exits within the bound', async () => {
      const child = await start();
      await broker?.halt();
      await waitFor(() => child.output().includes('Restarting the consumer'), {
        timeoutMs: CRASH_WAIT_MS,
        what: 'kafkajs to restart the consumer',
      });
      const url = adminUrl(child);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, code: 'KAFKA_UNREACHABLE' });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(Number(/^geb_kafka_consumer_restarts_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
        1,
      );

      const { code, elapsedMs } = await terminate(child);
      expect(code, child.output()).not.toBe('outlived');
      expect([0, 75], child.output()).toContain(code);
      expect(elapsedMs).toBeLessThan(BOUND_MS + SLACK_MS);
      // Every step of the stop ran (within the bound or cut short by it): none threw on the consumer kafkajs restarts.
      expect(child.output()).not.toContain('a shutdown step failed');
    });

    it('SIGTERM at the moment the broker stops, a delivery in flight: exits within the bound', async () => {
      // Slow enough that the stop still waits for it when the broker is gone: the final commit and the LeaveGroup then
      // meet a dead broker, which kafkajs retries.
      await simulator?.close();
      simulator = await GenesysSimulator.start({ latencyMs: 1_500 });
      const child = await start();
      const producer = new Kafka({ brokers: [broker?.brokers ?? ''], logLevel: logLevel.NOTHING }).producer({
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      await producer.send({ topic, messages: [{ value: JSON.stringify({ email: 'a@shop.example' }) }] });
      await producer.disconnect();
      await waitFor(() => (simulator?.maxConcurrentApiCalls ?? 0) >= 1, {
        timeoutMs: 30_000,
        what: 'a delivery in flight',
      });
      const { code, elapsedMs } = (await Promise.all([terminate(child), broker?.halt()]))[0];
      expect(code, child.output()).not.toBe('outlived');
      expect([0, 75], child.output()).toContain(code);
      expect(elapsedMs).toBeLessThan(BOUND_MS + SLACK_MS);
    });

    it('a bridge stopped during the outage never appears in the group again once the broker is back', async () => {
      const child = await start();
      await broker?.halt();
      await waitFor(() => child.output().includes('Restarting the consumer'), {
        timeoutMs: CRASH_WAIT_MS,
        what: 'kafkajs to restart the consumer',
      });
      const { code } = await terminate(child);
      expect(code, child.output()).not.toBe('outlived');
      await broker?.restart();
      // The member from before the outage is forgotten after its session timeout; nothing may join after that.
      await waitFor(async () => (await members()) === 0, {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: 'the group to have no members',
      });
      // kafkajs' restart backoff grows to about 10 s: a restart scheduled before the stop would have rejoined by then.
      const watchUntil = Date.now() + 15_000;
      while (Date.now() < watchUntil) {
        expect(await members()).toBe(0);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    });
  },
);
