import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry.js';
import { checkSchemaFields } from '../../src/rules/schema-fields.js';
import { uniqueName } from '../support/kafka.js';
import { RegistryProducer } from '../support/registry-producer.js';
import { ORDER_AVRO } from '../support/schemas.js';

const rules = (topic: string, match: string, to: string, text: string) => `
version: 1
rules:
  - name: r-${topic}
    topics: [${topic}]
    match: ${match}
    action:
      agentlessEmail:
        from: { email: shop@example.com }
        to: { email: "${to}" }
        subject: "Hi"
        text: "${text}"
`;

describe("checkSchemaFields (against the run's real registry)", () => {
  // Topic names of this file's own: the registry is shared by every test file of the run.
  const orders = uniqueName('orders');
  const returns = uniqueName('returns');
  const accounts = uniqueName('accounts');
  const plain = uniqueName('plain');
  let client: SchemaRegistryClient;

  beforeAll(async () => {
    const url = inject('schemaRegistryUrl');
    client = new SchemaRegistryClient({ url });
    const { registry } = new RegistryProducer(url);
    const subject = (topic: string) => ({ subject: `${topic}-value` });
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(ORDER_AVRO) }, subject(orders));
    const returnsSchema = {
      type: 'object',
      properties: { kind: { type: 'string' }, buyer: { $ref: '#/definitions/buyer' } },
      definitions: { buyer: { type: 'object', properties: { email: { type: 'string' } } } },
    };
    await registry.register(
      { type: SchemaType.JSON, schema: JSON.stringify(returnsSchema) },
      subject(returns),
    );
    const accountsProto = `syntax = "proto3"; package a;
message Opened { string account_id = 1; }
message Reset { string account_id = 1; Person person = 2; message Person { string email = 1; } }`;
    await registry.register({ type: SchemaType.PROTOBUF, schema: accountsProto }, subject(accounts));
  });

  it('accepts fields the Avro schema has, through nested records and unions', async () => {
    const report = await checkSchemaFields(
      rules(
        orders,
        '{ orderId: [A-1], customer: { name: [Ada] }, $or: [{ note: [x] }, { total: ["1"] }], $kafka: { key: [k] } }',
        '{{ customer.email }}',
        '{{ note }} {{ total }}',
      ),
      client,
    );
    expect(report).toEqual({ warnings: [], unchecked: [] });
  });

  it('warns about fields the latest schema lacks, naming the rule, the field and where', async () => {
    const report = await checkSchemaFields(
      rules(orders, '{ status: [SHIPPED] }', '{{ customer.mail }}', '{{ orderId | upcase }}'),
      client,
    );
    expect(report.warnings.map((w) => [w.rule, w.field, w.where, w.subject])).toEqual([
      [`r-${orders}`, 'status', 'match', `${orders}-value`],
      [`r-${orders}`, 'customer.mail', 'action.agentlessEmail.to.email', `${orders}-value`],
    ]);
    expect(report.warnings[1]?.message).toBe(
      `rule "r-${orders}" action.agentlessEmail.to.email: the latest schema of ${orders}-value has no field "customer.mail"`,
    );
  });

  it('reads JSON Schema properties (with $ref) and any Protobuf message type of the file', async () => {
    const json = await checkSchemaFields(
      rules(returns, '{ kind: [Return] }', '{{ buyer.email }}', '{{ buyer.phone }}'),
      client,
    );
    expect(json.warnings.map((w) => w.field)).toEqual(['buyer.phone']);
    const proto = await checkSchemaFields(
      rules(accounts, '{ account_id: [x] }', '{{ person.email }}', '{{ person.first_name }}'),
      client,
    );
    expect(proto.warnings.map((w) => w.field)).toEqual(['person.first_name']);
  });

  it('reports subjects without a schema as unchecked', async () => {
    const report = await checkSchemaFields(rules(plain, '{ a: [1] }', '{{ b }}', 'x'), client);
    expect(report).toEqual({ warnings: [], unchecked: [`${plain}-value`] });
  });
});
