import type { Models } from 'purecloud-platform-client-v2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SIMULATOR_CLIENT, GenesysSimulator } from '../../src/simulator/server.js';

let sim: GenesysSimulator;
let bearer: string;

beforeAll(async () => {
  sim = await GenesysSimulator.start();
  const res = await fetch(`${sim.url}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${DEFAULT_SIMULATOR_CLIENT.id}:${DEFAULT_SIMULATOR_CLIENT.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  bearer = ((await res.json()) as { access_token: string }).access_token;
});
afterAll(() => sim.close());
beforeEach(() => {
  sim.setFaults({}, { replace: true });
});

async function call(method: string, path: string, body?: unknown, token = bearer) {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function sendEmail(to: string): Promise<string> {
  const { status, body } = await call('POST', '/api/v2/conversations/emails/agentless', {
    senderType: 'Outbound',
    fromAddress: { email: 'orders@shop.example' },
    toAddresses: [{ email: to }],
    subject: 'Your order',
    textBody: 'Shipped',
  });
  expect(status).toBe(200);
  return body['conversationId'] as string;
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sessionsOf = (c: Models.AnalyticsConversationWithoutAttributes) =>
  (c.participants ?? []).flatMap((p) => p.sessions ?? []);

describe('simulator: what became of a send', () => {
  it('shows a bounce on the email conversation after the delay, and delivery otherwise', async () => {
    sim.setFaults({ bounceDomains: ['bounce.example'], bounceAfterMs: 1_500 });
    const bounced = await sendEmail('nobody@bounce.example');
    const delivered = await sendEmail('ada@fine.example');

    const early = (await call('GET', `/api/v2/conversations/emails/${bounced}`))
      .body as Models.EmailConversation;
    const customerEarly = early.participants?.find((p) => p.purpose === 'customer');
    expect(customerEarly?.errorInfo).toBeUndefined();

    const later = await until(
      async () =>
        (await call('GET', `/api/v2/conversations/emails/${bounced}`)).body as Models.EmailConversation,
      (c) => c.participants?.some((p) => p.errorInfo !== undefined) === true,
    );
    const customer = later.participants?.find((p) => p.purpose === 'customer');
    expect(customer).toMatchObject({ state: 'disconnected', errorInfo: { code: 'email.delivery.failed' } });

    const ok = (await call('GET', `/api/v2/conversations/emails/${delivered}`))
      .body as Models.EmailConversation;
    expect(ok.participants?.every((p) => p.errorInfo === undefined)).toBe(true);

    const multi = await call('GET', `/api/v2/analytics/conversations/details?id=${bounced},${delivered}`);
    const conversations =
      (multi.body as Models.AnalyticsConversationWithoutAttributesMultiGetResponse).conversations ?? [];
    const statusOf = (id: string) =>
      sessionsOf(conversations.find((c) => c.conversationId === id) ?? {})[0]?.deliveryStatus;
    expect(statusOf(bounced)).toBe('DeliveryFailed');
    expect(statusOf(delivered)).toBe('DeliverySuccess');
    expect((await call('GET', '/api/v2/conversations/emails/no-such-id')).status).toBe(404);
  });

  it('hides conversations from analytics for the delay, answers 403 when told, and can omit deliveryStatus', async () => {
    sim.setFaults({ analyticsDelayMs: 400 });
    const id = await sendEmail('grace@example.com');
    const first = await call('GET', `/api/v2/analytics/conversations/details?id=${id}`);
    expect((first.body as { conversations: unknown[] }).conversations).toEqual([]);
    const seen = await until(
      () => call('GET', `/api/v2/analytics/conversations/details?id=${id}`),
      (r) => (r.body as { conversations: unknown[] }).conversations.length === 1,
    );
    expect((seen.body as { conversations: unknown[] }).conversations).toHaveLength(1);

    sim.setFaults({ analyticsDelayMs: 0, omitDeliveryStatus: true });
    const omitted = await call('GET', `/api/v2/analytics/conversations/details?id=${id}`);
    const conversation = (omitted.body as { conversations: Models.AnalyticsConversationWithoutAttributes[] })
      .conversations[0];
    expect(sessionsOf(conversation ?? {})[0]).not.toHaveProperty('deliveryStatus');

    sim.setFaults({ analyticsStatus: 403 });
    const forbidden = await call('GET', `/api/v2/analytics/conversations/details?id=${id}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body['code']).toBe('missing.permissions');
    expect(
      (await call('GET', `/api/v2/analytics/conversations/details?id=${id}`, undefined, 'bad')).status,
    ).toBe(401);
  });

  it('answers the details query by interval and segment filters, page by page', async () => {
    const start = new Date().toISOString();
    const ids = [
      await sendEmail('a@example.com'),
      await sendEmail('b@example.com'),
      await sendEmail('c@example.com'),
    ];
    const message = await call('POST', '/api/v2/conversations/messages/agentless', {
      fromAddress: '+15550001',
      toAddress: '+15550002',
      toAddressMessengerType: 'sms',
      textBody: 'hi',
    });
    const end = new Date(Date.now() + 1000).toISOString();
    const query = (pageNumber: number, mediaType = 'email'): Models.ConversationQuery => ({
      interval: `${start}/${end}`,
      segmentFilters: [
        {
          type: 'and',
          predicates: [
            { dimension: 'mediaType', value: mediaType },
            { dimension: 'direction', value: 'outbound' },
          ],
        },
      ],
      paging: { pageSize: 2, pageNumber },
    });
    const page1 = (await call('POST', '/api/v2/analytics/conversations/details/query', query(1)))
      .body as Models.AnalyticsConversationQueryResponse;
    const page2 = (await call('POST', '/api/v2/analytics/conversations/details/query', query(2)))
      .body as Models.AnalyticsConversationQueryResponse;
    expect(page1.totalHits).toBe(3);
    expect(page1.conversations).toHaveLength(2);
    const found = [...(page1.conversations ?? []), ...(page2.conversations ?? [])].map(
      (c) => c.conversationId,
    );
    for (const id of ids) expect(found).toContain(id);
    expect(found).not.toContain(message.body['conversationId']);
    const messages = (
      await call('POST', '/api/v2/analytics/conversations/details/query', query(1, 'message'))
    ).body as Models.AnalyticsConversationQueryResponse;
    expect(messages.conversations?.map((c) => c.conversationId)).toEqual([message.body['conversationId']]);
    const bad = await call('POST', '/api/v2/analytics/conversations/details/query', {
      interval: 'yesterday',
    });
    expect(bad.status).toBe(400);
  });

  it("serves an agentless message's status, failed for a bouncing number prefix", async () => {
    sim.setFaults({ bounceDomains: ['+1555999'] });
    const send = (to: string) =>
      call('POST', '/api/v2/conversations/messages/agentless', {
        fromAddress: '+15550001',
        toAddress: to,
        toAddressMessengerType: 'sms',
        textBody: 'hi',
      });
    const ok = (await send('+15550002')).body;
    const failed = (await send('+15559990000')).body;
    const statusOf = async (m: Record<string, unknown>) =>
      (
        (
          await call(
            'GET',
            `/api/v2/conversations/messages/${String(m['conversationId'])}/messages/${String(m['id'])}`,
          )
        ).body as unknown as Models.MessageData
      ).status;
    expect(await statusOf(ok)).toBe('delivery-success');
    expect(await statusOf(failed)).toBe('delivery-failed');
    expect(
      (await call('GET', `/api/v2/conversations/messages/${String(ok['conversationId'])}/messages/nope`))
        .status,
    ).toBe(404);
  });

  it('refuses a malformed bounce switch', () => {
    expect(() => sim.setFaults({ bounceDomains: 'x' as unknown as string[] })).toThrow(/bounceDomains/);
  });
});
