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

/** `contentType` null: no Content-Type header of our own (fetch then sends text/plain for a string). */
function send(body: unknown, bearer?: string, contentType: string | null = 'application/json') {
  return fetch(`${sim.url}/api/v2/conversations/emails/agentless`, {
    method: 'POST',
    headers: {
      ...(contentType !== null && { 'content-type': contentType }),
      ...(bearer && { authorization: `Bearer ${bearer}` }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function sendMessage(body: unknown, bearer: string) {
  return fetch(`${sim.url}/api/v2/conversations/messages/agentless`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
}

/** Genesys' ErrorBody (GENESYS.md), with its contextId the response's ININ-Correlation-Id. */
async function expectErrorBody(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, message: expect.any(String) as unknown, errors: [] });
  expect(Array.isArray(body['details'])).toBe(true);
  expect(body['contextId']).toBe(res.headers.get('inin-correlation-id'));
  return body as { details: { fieldName: string; errorCode: string }[] };
}

describe('Genesys simulator', () => {
  it('refuses a wrong secret with the invalid_client body', async () => {
    const res = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: basic(DEFAULT_SIMULATOR_CLIENT.id, 'nope'),
        'content-type': 'application/x-www-form-urlencoded',
      },
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
    [{ ...email, toAddresses: [{ email: 'ada@example.com, bob@example.com' }] }, 'toAddresses[0].email'],
    [{ ...email, toAddresses: [{ email: 'Ada <ada@example.com>' }] }, 'toAddresses[0].email'],
    [{ ...email, toAddresses: [{ email: 'ada\u0000@example.com' }] }, 'toAddresses[0].email'],
    [{ ...email, toAddresses: [{ email: 'ada@exa\u200bmple.com' }] }, 'toAddresses[0].email'],
    [{ ...email, toAddresses: [{ email: 'ada@\u202eelpmaxe.com' }] }, 'toAddresses[0].email'],
    [{ ...email, fromAddress: { email: 'orders\u0085@shop.example' } }, 'fromAddress.email'],
    [{ toAddresses: email.toAddresses, fromAddress: email.fromAddress }, 'senderType'],
    [{ senderType: 'Outbound', toAddresses: email.toAddresses }, 'fromAddress'],
    [{ senderType: 'Outbound', fromAddress: email.fromAddress }, 'toAddresses'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const res = await send(body, await token());
    expect(res.status).toBe(400);
    const error = (await res.json()) as { code: string; details: { fieldName: string }[] };
    expect(error.code).toBe('bad.request');
    expect(error.details.map((d) => d.fieldName)).toContain(field);
  });

  it('answers 415 to an API call whose Content-Type is not JSON, as Genesys does', async () => {
    const bearer = await token();
    for (const contentType of [null, 'text/plain', 'application/x-www-form-urlencoded']) {
      await expectErrorBody(await send(email, bearer, contentType), 415, 'unsupported.media.type');
    }
    expect((await send(email, bearer, 'application/json; charset=UTF-8')).status).toBe(200);
    expect((await send(email, bearer, 'Application/JSON')).status).toBe(200);
  });

  it('answers 400 to a missing or malformed body, and to a body that is not an object', async () => {
    const bearer = await token();
    await expectErrorBody(await send('', bearer), 400, 'bad.request');
    await expectErrorBody(await send('{"senderType":', bearer), 400, 'bad.request');
    const notObject = await expectErrorBody(await send([email], bearer), 400, 'bad.request');
    expect(notObject.details).toEqual([{ fieldName: 'body', errorCode: 'REQUIRED_OBJECT' }]);
  });

  it('refuses the token request unless it is a form', async () => {
    const res = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: basic(DEFAULT_SIMULATOR_CLIENT.id, DEFAULT_SIMULATOR_CLIENT.secret),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it.each([
    [{ toAddress: '+44\u200b7700900123' }, 'toAddress', 'INVALID_VALUE'],
    [{ toAddress: 'user-1\u202e', toAddressMessengerType: 'open' }, 'toAddress', 'INVALID_VALUE'],
    [{ fromAddress: 'shop\u0000' }, 'fromAddress', 'INVALID_VALUE'],
    [{ toAddress: '07700 900123' }, 'toAddress', 'INVALID_PHONE_NUMBER'],
    [{ toAddress: undefined }, 'toAddress', 'REQUIRED_VALUE'],
    [{ textBody: undefined }, 'textBody', 'TEXT_OR_TEMPLATE_REQUIRED'],
  ])('refuses the message %j', async (fields, field, errorCode) => {
    const message = {
      fromAddress: '+15550000000',
      toAddress: '+447700900123',
      toAddressMessengerType: 'sms',
      textBody: 'Hello',
      ...fields,
    };
    const error = await expectErrorBody(await sendMessage(message, await token()), 400, 'bad.request');
    expect(error.details).toContainEqual({ fieldName: field, errorCode });
  });

  it('accepts a well-formed message', async () => {
    const message = {
      fromAddress: '+15550000000',
      toAddress: '+447700900123',
      toAddressMessengerType: 'sms',
      textBody: 'Hello',
    };
    expect((await sendMessage(message, await token())).status).toBe(200);
  });

  it('records what it received, readable over its admin endpoint', async () => {
    const res = await fetch(`${sim.url}/__simulator/requests?path=/api/v2/conversations/emails/agentless`);
    const received = (await res.json()) as { status: number; body: unknown }[];
    expect(received.length).toBe(sim.received('/api/v2/conversations/emails/agentless').length);
    expect(received.some((r) => r.status === 200)).toBe(true);
  });
});
