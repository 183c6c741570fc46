import { BridgeError } from '../errors.js';
import type { RenderedAction, RenderedAddress } from '../rules/action.js';
import { requestFor } from './actions.js';
import type { GenesysRequest } from './client.js';
import { checkAddressCharacters, headerText } from './outbound-guard.js';

/**
 * Genesys' documented limits (GENESYS.md). A rendered action that breaks one would only earn a certain 400, so it is
 * dead-lettered before the call. Address shapes (one well-formed email address, E.164 for SMS) are checked where they
 * are rendered (rules/action.ts, INVALID_ADDRESS), with the rules-file field in the message. The simulator checks the
 * same limits on its own (src/simulator/validation.ts): it is the referee that proves these checks right, so neither
 * imports the other.
 */
export const GENESYS_LIMITS = {
  subjectChars: 400,
  friendlyNameChars: 64,
  emailBodyBytes: 3 * 1024 * 1024,
  smsTextChars: 765,
  messageTextChars: 2000,
  requestBodyBytes: 512_000,
} as const;

/**
 * The request for a rendered action, once its header fields are cleaned, its addresses free of invisible characters
 * and its fields within Genesys' limits. Throws a dead-letter BridgeError.
 */
export function checkedRequestFor(rendered: RenderedAction): GenesysRequest {
  const action = hygienic(rendered);
  checkFields(action);
  const request = requestFor(action);
  const bytes = Buffer.byteLength(JSON.stringify(request.body));
  if (bytes > GENESYS_LIMITS.requestBodyBytes) {
    throw exceeded(`request body: ${bytes} bytes, more than ${GENESYS_LIMITS.requestBodyBytes}`);
  }
  return request;
}

/**
 * The action with its header fields cleaned (outbound-guard.ts). The templates already fold CR/LF in header fields;
 * this is the last word before the body is built, whatever rendered the action.
 */
function hygienic(action: RenderedAction): RenderedAction {
  switch (action.kind) {
    case 'agentlessEmail': {
      const { subject, conversationId } = action;
      return {
        ...action,
        from: cleanAddress(action.from, 'fromAddress'),
        to: cleanAddress(action.to, 'toAddresses[0]'),
        ...(action.replyTo && { replyTo: cleanAddress(action.replyTo, 'replyToAddress') }),
        ...(subject !== undefined && { subject: headerText(subject) }),
        ...(conversationId !== undefined && { conversationId: headerText(conversationId) }),
      };
    }
    case 'agentlessMessage':
      checkAddressCharacters(action.from, 'fromAddress');
      checkAddressCharacters(action.to, 'toAddress');
      return action;
    case 'campaignContact':
      return action;
  }
}

function cleanAddress(address: RenderedAddress, field: string): RenderedAddress {
  checkAddressCharacters(address.email, `${field}.email`);
  return address.name === undefined ? address : { ...address, name: headerText(address.name) };
}

function checkFields(action: RenderedAction): void {
  switch (action.kind) {
    case 'agentlessEmail':
      for (const [field, value] of [
        ['fromAddress', action.from],
        ['toAddresses[0]', action.to],
        ['replyToAddress', action.replyTo],
      ] as const) {
        chars(value?.name, `${field}.name`, GENESYS_LIMITS.friendlyNameChars);
      }
      chars(action.subject, 'subject', GENESYS_LIMITS.subjectChars);
      bytes(action.text, 'textBody', GENESYS_LIMITS.emailBodyBytes);
      bytes(action.html, 'htmlBody', GENESYS_LIMITS.emailBodyBytes);
      return;
    case 'agentlessMessage':
      chars(
        action.text,
        'textBody',
        action.messengerType === 'sms' ? GENESYS_LIMITS.smsTextChars : GENESYS_LIMITS.messageTextChars,
      );
      return;
    case 'campaignContact':
      return;
  }
}

function chars(value: string | undefined, field: string, limit: number): void {
  // UTF-16 code units, as the simulator counts them: the stricter reading when a text holds emoji.
  if (value !== undefined && value.length > limit) {
    throw exceeded(`${field}: ${value.length} characters, more than ${limit}`);
  }
}

function bytes(value: string | undefined, field: string, limit: number): void {
  const size = value === undefined ? 0 : Buffer.byteLength(value);
  if (size > limit) throw exceeded(`${field}: ${size} bytes, more than ${limit}`);
}

function exceeded(reason: string): BridgeError {
  return new BridgeError('GENESYS_LIMIT_EXCEEDED', `${reason} (Genesys' limit); not sent`);
}
