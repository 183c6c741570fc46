import type {
  RenderedAction,
  RenderedAddress,
  RenderedAgentlessEmail,
  RenderedAgentlessMessage,
  RenderedCampaignContact,
} from '../rules/action.js';
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

/** Models.SendAgentlessOutboundMessageRequest */
export interface SendAgentlessOutboundMessageRequest {
  fromAddress: string;
  toAddress: string;
  toAddressMessengerType: 'sms' | 'whatsapp' | 'open';
  textBody?: string;
  messagingTemplate?: {
    responseId: string;
    bodyParameters?: { id: string; value: string }[];
    headerParameters?: { id: string; value: string }[];
    buttonUrlParameters?: { id: string; value: string }[];
  };
  useExistingActiveConversation?: boolean;
}

/** Models.WritableDialerContact */
export interface WritableDialerContact {
  id?: string;
  contactListId: string;
  data: Record<string, string>;
  callable?: boolean;
}

export const AGENTLESS_EMAIL_PATH = '/api/v2/conversations/emails/agentless';
export const AGENTLESS_MESSAGE_PATH = '/api/v2/conversations/messages/agentless';
/** Genesys' per-request limit on contacts added at once (GENESYS.md: about 1000, unverified). */
export const CONTACTS_PER_REQUEST = 1000;

export function contactsPath(contactListId: string): string {
  return `/api/v2/outbound/contactlists/${encodeURIComponent(contactListId)}/contacts`;
}

export function requestFor(action: RenderedAction): GenesysRequest {
  switch (action.kind) {
    case 'agentlessEmail':
      return { method: 'POST', path: AGENTLESS_EMAIL_PATH, body: agentlessEmailBody(action) };
    case 'agentlessMessage':
      return { method: 'POST', path: AGENTLESS_MESSAGE_PATH, body: agentlessMessageBody(action) };
    case 'campaignContact':
      return { method: 'POST', path: contactsRequestPath(action), body: [contactBody(action)] };
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

function agentlessMessageBody(message: RenderedAgentlessMessage): SendAgentlessOutboundMessageRequest {
  return {
    fromAddress: message.from,
    toAddress: message.to,
    toAddressMessengerType: message.messengerType,
    ...(message.text !== undefined && { textBody: message.text }),
    ...(message.template && { messagingTemplate: message.template }),
    ...(message.useExistingActiveConversation !== undefined && {
      useExistingActiveConversation: message.useExistingActiveConversation,
    }),
  };
}

/** The path with the query options in a fixed order, so that equal options batch together. */
function contactsRequestPath(contact: RenderedCampaignContact): string {
  const query = new URLSearchParams();
  for (const name of ['priority', 'clearSystemData', 'doNotQueue'] as const) {
    const value = contact.options[name];
    if (value !== undefined) query.set(name, String(value));
  }
  const search = query.toString();
  return `${contactsPath(contact.contactListId)}${search ? `?${search}` : ''}`;
}

function contactBody(contact: RenderedCampaignContact): WritableDialerContact {
  return {
    ...(contact.id !== undefined && { id: contact.id }),
    contactListId: contact.contactListId,
    data: contact.data,
    ...(contact.callable !== undefined && { callable: contact.callable }),
  };
}

function address(a: RenderedAddress): EmailAddress {
  return a.name !== undefined && a.name !== '' ? { email: a.email, name: a.name } : { email: a.email };
}

/** The recipient of an action, for hashing into logs and history: never logged raw. */
export function recipientOf(action: RenderedAction): string {
  switch (action.kind) {
    case 'agentlessEmail':
      return action.to.email;
    case 'agentlessMessage':
      return action.to;
    case 'campaignContact':
      return `${action.contactListId}:${action.id ?? JSON.stringify(action.data)}`;
  }
}

/** The Genesys id that proves the send was accepted (a contact's id for campaign contacts). */
export function genesysIdOf(response: Record<string, unknown>): string | undefined {
  const items = response['items'];
  if (Array.isArray(items)) {
    const first: unknown = items[0];
    const id = first && typeof first === 'object' ? (first as Record<string, unknown>)['id'] : undefined;
    return typeof id === 'string' ? id : undefined;
  }
  const id = response['conversationId'] ?? response['id'];
  return typeof id === 'string' ? id : undefined;
}

/** An agentless message's own id (its status is looked up by conversation id and this). */
export function genesysMessageIdOf(response: Record<string, unknown>): string | undefined {
  const id = response['id'];
  return typeof id === 'string' ? id : undefined;
}
