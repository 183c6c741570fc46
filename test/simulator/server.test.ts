import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';

let sim: GenesysSimulator;
beforeAll(async () => {
  sim = await GenesysSimulator.start({ tokenLifetimeS: 1 });
});
afterAll(() => sim.close());

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function token(): Promise<string> {
  const res = await fetch(`${sim.url}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: basic(DEFAULT_SIMULATOR_CLIENT.id, DEFAULT_SIMULATOR_CLIENT.secret),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number };
  expect(body.token_type.toLowerCase()).toBe('bearer');
  expect(body.expires_in).toBe(1);
  return body.access_token;
}

const email = {
  senderType: 'Outbound',
  fromAddress: { email: 'orders@shop.example', name: 'Shop' },
  toAddresses: [{ email: 'ada@example.com' }],
  subject: 'Hi',
  textBody: 'Hello',
};

function send(body: unknown, bearer?: string) {
  return fetch(`${sim.url}/api/v2/conversations/emails/agentless`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
    body: JSON.stringify(body),
  });
}

describe('Genesys simulator', () => {
  it('refuses a wrong secret with the invalid_client body', async () => {
    const res = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(DEFAULT_SIMULATOR_CLIENT.id, 'nope') },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: 'invalid_client',
      error_description: 'authentication failed',
    });
    expect(res.headers.get('inin-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('accepts a valid agentless email and answers an AgentlessEmailSendResponseDto', async () => {
    const res = await send(email, await token());
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ senderType: 'Outbound', toAddresses: email.toAddresses, subject: 'Hi' });
    expect(body['conversationId']).toMatch(/^[0-9a-f-]{36}$/);
    expect(body['dateCreated']).toEqual(expect.any(String));
  });

  it('answers 401 with a Genesys error body without a token and with an expired one', async () => {
    const missing = await send(email);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ status: 401, code: 'authentication.required' });
    const expired = await token();
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await send(email, expired);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { contextId: string };
    expect(body.contextId).toBe(res.headers.get('inin-correlation-id'));
  });

  it.each([
    [{ ...email, senderType: 'Inbound' }, 'senderType'],
    [{ ...email, toAddresses: [] }, 'toAddresses'],
    [{ ...email, toAddresses: [{ email: 'a@b.co' }, { email: 'c@d.co' }] }, 'toAddresses'],
    [{ ...email, fromAddress: { email: 'nope' } }, 'fromAddress.email'],
    [{ ...email, subject: 'x'.repeat(401) }, 'subject'],
    [{ ...email, fromAddress: { email: 'a@b.co', name: 'n'.repeat(65) } }, 'fromAddress.name'],
    [{ ...email, bcc: 'x' }, 'bcc'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const res = await send(body, await token());
    expect(res.status).toBe(400);
    const error = (await res.json()) as { code: string; details: { fieldName: string }[] };
    expect(error.code).toBe('bad.request');
    expect(error.details.map((d) => d.fieldName)).toContain(field);
  });

  it('records what it received, readable over its admin endpoint', async () => {
    const res = await fetch(`${sim.url}/__simulator/requests?path=/api/v2/conversations/emails/agentless`);
    const received = (await res.json()) as { status: number; body: unknown }[];
    expect(received.length).toBe(sim.received('/api/v2/conversations/emails/agentless').length);
    expect(received.some((r) => r.status === 200)).toBe(true);
  });
});
