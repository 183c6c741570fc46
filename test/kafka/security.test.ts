import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_EMAIL_PATH } from '../../src/genesys/actions.js';
import { GenesysSimulator } from '../../src/simulator/server.js';
import { spawnBridge, startTestBridge, writeRulesFile, simulatorEnv } from '../support/bridge.js';
import { startKafkaBroker, type KafkaBroker } from '../support/kafka-broker.js';
import { uniqueName, waitFor } from '../support/kafka.js';
import { tempDir } from '../support/temp.js';

const run = promisify(execFile);
const USER = { name: 'geb-bridge', password: 'scram-Pa55word-never-printed' };

/** A CA and a broker certificate for 127.0.0.1, made with the JDK's keytool (Java is there for the broker anyway). */
async function makeCertificates(dir: string): Promise<{ caPem: string; keystore: string; password: string }> {
  const password = 'keystore-pass';
  const keytool = process.env['JAVA_HOME'] ? join(process.env['JAVA_HOME'], 'bin', 'keytool') : 'keytool';
  const common = ['-storetype', 'PKCS12', '-storepass', password, '-keypass', password];
  const ca = join(dir, 'ca.p12');
  const keystore = join(dir, 'broker.p12');
  const caPem = join(dir, 'ca.pem');
  await run(keytool, [
    '-genkeypair',
    '-alias',
    'ca',
    '-dname',
    'CN=geb-test-ca',
    '-ext',
    'bc:c',
    '-keyalg',
    'RSA',
    '-validity',
    '2',
    '-keystore',
    ca,
    ...common,
  ]);
  await run(keytool, ['-exportcert', '-alias', 'ca', '-rfc', '-file', caPem, '-keystore', ca, ...common]);
  await run(keytool, [
    '-genkeypair',
    '-alias',
    'broker',
    '-dname',
    'CN=localhost',
    '-keyalg',
    'RSA',
    '-validity',
    '2',
    '-keystore',
    keystore,
    ...common,
  ]);
  await run(keytool, [
    '-certreq',
    '-alias',
    'broker',
    '-file',
    join(dir, 'broker.csr'),
    '-keystore',
    keystore,
    ...common,
  ]);
  await run(keytool, [
    '-gencert',
    '-alias',
    'ca',
    '-infile',
    join(dir, 'broker.csr'),
    '-outfile',
    join(dir, 'broker.pem'),
    '-rfc',
    '-ext',
    'SAN=IP:127.0.0.1,DNS:localhost',
    '-validity',
    '2',
    '-keystore',
    ca,
    ...common,
  ]);
  await run(keytool, [
    '-importcert',
    '-noprompt',
    '-alias',
    'ca',
    '-file',
    caPem,
    '-keystore',
    keystore,
    ...common,
  ]);
  await run(keytool, [
    '-importcert',
    '-alias',
    'broker',
    '-file',
    join(dir, 'broker.pem'),
    '-keystore',
    keystore,
    ...common,
  ]);
  return { caPem, keystore, password };
}

describe('secured Kafka connections (a broker with SASL/SCRAM and TLS listeners)', () => {
  let broker: KafkaBroker;
  let simulator: GenesysSimulator;
  let caFile: string;
  const topic = uniqueName('secure.orders');

  beforeAll(async () => {
    const dir = await tempDir('geb-tls-');
    const certs = await makeCertificates(dir);
    caFile = certs.caPem;
    broker = await startKafkaBroker({
      extraListeners: [
        { name: 'SASL_PLAINTEXT', protocol: 'SASL_PLAINTEXT' },
        { name: 'SSL', protocol: 'SSL' },
      ],
      formatArgs: ['--add-scram', `SCRAM-SHA-256=[name=${USER.name},password=${USER.password}]`],
      extraProperties: {
        'sasl.enabled.mechanisms': 'SCRAM-SHA-256',
        'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config':
          'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'ssl.keystore.type': 'PKCS12',
        'ssl.keystore.location': certs.keystore,
        'ssl.keystore.password': certs.password,
        'ssl.key.password': certs.password,
      },
    });
    simulator = await GenesysSimulator.start();
    const kafka = new Kafka({ clientId: 'geb-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        {
          key: 'k',
          value: JSON.stringify({ type: 'OrderShipped', orderId: 'S-1', email: 'sec@example.com' }),
        },
      ],
    });
    await producer.disconnect();
  });

  afterAll(async () => {
    await simulator?.close();
    await broker?.stop();
  });

  async function deliversOverListener(env: Record<string, string>): Promise<void> {
    const rulesFile = await writeRulesFile(`
version: 1
rules:
  - name: secure-email
    topics: [${topic}]
    action:
      agentlessEmail: { from: { email: a@shop.example }, to: { email: "{{ email }}" }, subject: "{{ orderId }}", text: x }
`);
    const before = simulator.received(AGENTLESS_EMAIL_PATH).length;
    const { bridge } = await startTestBridge({
      KAFKA_GROUP_ID: uniqueName('geb'),
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
      ...env,
    });
    try {
      await waitFor(() => simulator.received(AGENTLESS_EMAIL_PATH).length > before, { what: 'the email' });
      expect(simulator.received(AGENTLESS_EMAIL_PATH).at(-1)?.body).toMatchObject({ subject: 'S-1' });
    } finally {
      await bridge.close();
    }
  }

  it('consumes and delivers over SASL/SCRAM-SHA-256', async () => {
    await deliversOverListener({
      KAFKA_BROKERS: broker.listeners['SASL_PLAINTEXT'] ?? '',
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      KAFKA_SASL_USERNAME: USER.name,
      KAFKA_SASL_PASSWORD: USER.password,
    });
  });

  it('consumes and delivers over TLS, trusting the CA from KAFKA_SSL_CA_FILE with the host name checked', async () => {
    await deliversOverListener({
      KAFKA_BROKERS: broker.listeners['SSL'] ?? '',
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CA_FILE: caFile,
    });
  });

  it('fails start-up clearly on a wrong SASL password, without printing it', async () => {
    const rulesFile = await writeRulesFile(
      `version: 1\nrules:\n  - name: r\n    topics: [${topic}]\n    action:\n      agentlessEmail: { from: { email: a@b.co }, to: { email: "{{ email }}" }, text: x }\n`,
    );
    const wrong = 'Wrong-scram-password-xyz';
    const passwordFile = join(await tempDir('geb-pw-'), 'password');
    await writeFile(passwordFile, `${wrong}\n`);
    const child = spawnBridge({
      KAFKA_BROKERS: broker.listeners['SASL_PLAINTEXT'] ?? '',
      KAFKA_GROUP_ID: uniqueName('geb'),
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      KAFKA_SASL_USERNAME: USER.name,
      KAFKA_SASL_PASSWORD_FILE: passwordFile,
      RULES_FILE: rulesFile,
      ...simulatorEnv(simulator),
    });
    const code = await Promise.race([
      child.exited,
      new Promise((r) => setTimeout(() => r('still running'), 45_000)),
    ]);
    await child.stop('SIGKILL');
    expect(code).toBe(78);
    const output = child.output();
    const fatal = output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; code?: string; msg: string })
      .find((l) => l.level === 'fatal');
    expect(fatal?.code).toBe('KAFKA_AUTH_FAILED');
    expect(fatal?.msg).toContain(
      `Kafka refused the SASL credentials for user "${USER.name}" (SCRAM-SHA-256)`,
    );
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(USER.password);
  });
});
