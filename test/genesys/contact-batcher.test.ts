import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTLESS_MESSAGE_PATH, contactsPath, requestFor } from '../../src/genesys/actions.js';
import { GenesysClient } from '../../src/genesys/client.js';
import { ContactBatcher } from '../../src/genesys/contact-batcher.js';
import { createHttp } from '../../src/genesys/http.js';
import { TokenProvider } from '../../src/genesys/token-provider.js';
import type { RenderedCampaignContact } from '../../src/rules/action.js';
import { Secret } from '../../src/secret.js';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';
import { createLogger } from '../../src/telemetry/logger.js';

let simulator: GenesysSimulator;
let client: GenesysClient;

beforeAll(async () => {
  simulator = await GenesysSimulator.start();
  const http = createHttp({ requestTimeoutMs: 2_000 });
  const tokens = new TokenProvider({
    tokenUrl: `${simulator.url}/oauth/token`,
    clientId: DEFAULT_SIMULATOR_CLIENT.id,
    clientSecret: new Secret(DEFAULT_SIMULATOR_CLIENT.secret),
    http,
    logger: createLogger('silent'),
  });
  client = new GenesysClient({ apiBaseUrl: simulator.url, http, tokens });
});
afterAll(() => simulator.close());

function contact(list: string, phone: string, extra: Partial<RenderedCampaignContact> = {}) {
  return requestFor({
    kind: 'campaignContact',
    contactListId: list,
    data: { phone },
    options: {},
    ...extra,
  });
}

describe('ContactBatcher (simulator over HTTP)', () => {
  it('sends contacts for the same list in one call and gives each caller its own contact', async () => {
    simulator.clearReceived();
    const batcher = new ContactBatcher(client, { windowMs: 50, maxContacts: 1000 });
    const responses = await Promise.all([
      batcher.send(contact('list-a', '+15550000001')),
      batcher.send(contact('list-a', '+15550000002')),
      batcher.send(contact('list-b', '+15550000003')),
      batcher.send(contact('list-a', '+15550000004')),
    ]);
    const a = simulator.received(contactsPath('list-a'));
    const b = simulator.received(contactsPath('list-b'));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect((a[0]?.body as { data: { phone: string } }[]).map((c) => c.data.phone)).toEqual([
      '+15550000001',
      '+15550000002',
      '+15550000004',
    ]);
    const own = responses.map((r) =>
      (r.body['items'] as { data: { phone: string } }[]).map((c) => c.data.phone),
    );
    expect(own).toEqual([['+15550000001'], ['+15550000002'], ['+15550000003'], ['+15550000004']]);
  });

  it('never puts more than the per-request limit in one call', async () => {
    simulator.clearReceived();
    const batcher = new ContactBatcher(client, { windowMs: 50, maxContacts: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.send(contact('list-c', `+1555000000${n}`))));
    const sizes = simulator.received(contactsPath('list-c')).map((r) => (r.body as unknown[]).length);
    expect(sizes).toEqual([2, 2, 1]);
  });

  it("never lets a batch's body pass Genesys' size limit", async () => {
    simulator.clearReceived();
    const batcher = new ContactBatcher(client, { windowMs: 50 });
    // Five contacts of about 150 kB each: at most three fit in 512000 bytes.
    const big = (n: number) =>
      contact('list-size', `+1555000000${n}`, {
        data: { phone: `+1555000000${n}`, note: 'n'.repeat(150_000) },
      });
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => batcher.send(big(n))));
    expect(results.map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
    const calls = simulator.received(contactsPath('list-size'));
    expect(calls.map((r) => r.status)).toEqual([200, 200]);
    expect(calls.map((r) => (r.body as unknown[]).length)).toEqual([3, 2]);
  });

  it('when Genesys refuses a batch, sends its contacts one by one so only the bad one fails', async () => {
    simulator.clearReceived();
    const batcher = new ContactBatcher(client, { windowMs: 50 });
    const bad = {
      ...contact('list-d', '+15550000001'),
      body: [{ contactListId: 'list-d', data: { phone: 1 } }],
    };
    const results = await Promise.allSettled([
      batcher.send(contact('list-d', '+15550000002')),
      batcher.send(bad),
      batcher.send(contact('list-d', '+15550000003')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const calls = simulator.received(contactsPath('list-d'));
    expect(calls.map((r) => (r.body as unknown[]).length)).toEqual([3, 1, 1, 1]);
    expect(calls.map((r) => r.status).sort()).toEqual([200, 200, 400, 400]);
  });

  it('passes other requests straight through', async () => {
    const batcher = new ContactBatcher(client);
    const response = await batcher.send(
      requestFor({
        kind: 'agentlessMessage',
        messengerType: 'sms',
        from: '+15550000000',
        to: '+15551234567',
        text: 'Hi',
      }),
    );
    expect(response.body['conversationId']).toEqual(expect.any(String));
    expect(simulator.received(AGENTLESS_MESSAGE_PATH).at(-1)?.status).toBe(200);
  });
});

describe('simulator validation of the new endpoints', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['SMS to a number that is not E.164', { toAddress: '0612345678' }, 'toAddress'],
    ['unknown messenger type', { toAddressMessengerType: 'fax' }, 'toAddressMessengerType'],
    ['SMS text over 765 characters', { textBody: 'x'.repeat(766) }, 'textBody'],
    ['WhatsApp without a template', { toAddressMessengerType: 'whatsapp' }, 'messagingTemplate'],
    ['an unknown field', { colour: 'red' }, 'colour'],
  ];
  it.each(cases)('agentless message: %s → 400 naming the field', async (_name, change, field) => {
    const body = {
      fromAddress: '+15550000000',
      toAddress: '+15551234567',
      toAddressMessengerType: 'sms',
      textBody: 'Hi',
      ...change,
    };
    await expect(client.send({ method: 'POST', path: AGENTLESS_MESSAGE_PATH, body })).rejects.toMatchObject({
      code: 'GENESYS_REJECTED',
      status: 400,
      message: expect.stringContaining(field) as unknown,
    });
  });

  it('contacts: a contact for another list than the path → 400 naming the field', async () => {
    await expect(
      client.send({
        method: 'POST',
        path: contactsPath('list-e'),
        body: [{ contactListId: 'list-f', data: {} }],
      }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('[0].contactListId') as unknown,
    });
  });
});
