import type { RenderedAction, RenderedAddress, RenderedAgentlessEmail } from '../rules/action.js';
import type { GenesysRequest } from './client.js';

/** Request bodies of the Genesys actions, shaped after the official models (GENESYS.md). */
export interface EmailAddress {
  email: string;
  name?: string;
}

/** Models.AgentlessEmailSendRequestDto */
export interface AgentlessEmailSendRequest {
  senderType: 'Outbound';
  fromAddress: EmailAddress;
  toAddresses: EmailAddress[];
  replyToAddress?: EmailAddress;
  conversationId?: string;
  subject?: string;
  textBody?: string;
  htmlBody?: string;
}

export const AGENTLESS_EMAIL_PATH = '/api/v2/conversations/emails/agentless';

export function requestFor(action: RenderedAction): GenesysRequest {
  switch (action.kind) {
    case 'agentlessEmail':
      return { method: 'POST', path: AGENTLESS_EMAIL_PATH, body: agentlessEmailBody(action) };
  }
}

function agentlessEmailBody(email: RenderedAgentlessEmail): AgentlessEmailSendRequest {
  return {
    senderType: 'Outbound',
    fromAddress: address(email.from),
    toAddresses: [address(email.to)],
    ...(email.replyTo && { replyToAddress: address(email.replyTo) }),
    ...(email.conversationId !== undefined && { conversationId: email.conversationId }),
    ...(email.subject !== undefined && { subject: email.subject }),
    ...(email.text !== undefined && { textBody: email.text }),
    ...(email.html !== undefined && { htmlBody: email.html }),
  };
}

function address(a: RenderedAddress): EmailAddress {
  return a.name !== undefined && a.name !== '' ? { email: a.email, name: a.name } : { email: a.email };
}

/** The recipient of an action, for hashing into logs and history: never logged raw. */
export function recipientOf(action: RenderedAction): string {
  return action.to.email;
}

/** The Genesys id that proves the send was accepted. */
export function genesysIdOf(response: Record<string, unknown>): string | undefined {
  const id = response['conversationId'] ?? response['id'];
  return typeof id === 'string' ? id : undefined;
}
