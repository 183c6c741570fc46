import type { Models } from 'purecloud-platform-client-v2';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  AGENTLESS_EMAIL_PATH,
  AGENTLESS_MESSAGE_PATH,
  requestFor,
  type AgentlessEmailSendRequest,
  type SendAgentlessOutboundMessageRequest,
  type WritableDialerContact,
} from '../../src/genesys/actions.js';

/**
 * Our request bodies against the official SDK's models (a type-only import: the SDK is a dev dependency and never
 * loaded). The expectTypeOf lines are checked by `npm run typecheck` (part of CI): a field we send that the model lacks,
 * or a required field we could leave out, fails the build.
 */
describe('Genesys request bodies and the official models', () => {
  it('are assignable to the SDK models', () => {
    expectTypeOf<AgentlessEmailSendRequest>().toMatchTypeOf<Models.AgentlessEmailSendRequestDto>();
    expectTypeOf<SendAgentlessOutboundMessageRequest>().toMatchTypeOf<Models.SendAgentlessOutboundMessageRequest>();
    expectTypeOf<WritableDialerContact>().toMatchTypeOf<Models.WritableDialerContact>();
    // Assignability alone lets an extra optional field through: our field names must be the model's too.
    expectTypeOf<keyof AgentlessEmailSendRequest>().toMatchTypeOf<
      keyof Models.AgentlessEmailSendRequestDto
    >();
    expectTypeOf<keyof SendAgentlessOutboundMessageRequest>().toMatchTypeOf<
      keyof Models.SendAgentlessOutboundMessageRequest
    >();
    expectTypeOf<keyof NonNullable<SendAgentlessOutboundMessageRequest['messagingTemplate']>>().toMatchTypeOf<
      keyof Models.SendMessagingTemplateRequest
    >();
    expectTypeOf<keyof WritableDialerContact>().toMatchTypeOf<keyof Models.WritableDialerContact>();
  });

  it('builds each action on its endpoint, with only the fields the model knows', () => {
    const email = requestFor({
      kind: 'agentlessEmail',
      from: { email: 'orders@shop.example', name: 'Shop' },
      to: { email: 'ada@example.com' },
      subject: 'Hi',
      text: 'Hello',
    });
    expect(email.path).toBe(AGENTLESS_EMAIL_PATH);
    const emailModel: Record<keyof Models.AgentlessEmailSendRequestDto, true> = {
      senderType: true,
      conversationId: true,
      fromAddress: true,
      toAddresses: true,
      replyToAddress: true,
      subject: true,
      textBody: true,
      htmlBody: true,
    };
    expect(Object.keys(email.body as object).every((k) => k in emailModel)).toBe(true);

    const sms = requestFor({
      kind: 'agentlessMessage',
      messengerType: 'sms',
      from: '+15550001111',
      to: '+15550123',
      text: 'Hi',
    });
    expect(sms.path).toBe(AGENTLESS_MESSAGE_PATH);
    expect(sms.body).toMatchObject({ toAddressMessengerType: 'sms', textBody: 'Hi' });
  });
});
