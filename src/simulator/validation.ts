/**
 * Validates request bodies the way Genesys does (GENESYS.md), so that tests catch a body Genesys would refuse.
 * Returns the problems as Genesys' `details` entries: a field name and an error code each.
 */
export interface FieldProblem {
  readonly fieldName: string;
  readonly errorCode: string;
}

/**
 * One address, no display name or list. Control and invisible format characters (zero-width, bidirectional marks
 * and overrides) are refused: mail systems reject or mangle them, and a test must not pass on an address that only
 * looks right.
 */
const EMAIL_PART = String.raw`[^\s@<>()[\]",;:\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+`;
const EMAIL = new RegExp(`^${EMAIL_PART}@${EMAIL_PART}\\.${EMAIL_PART}$`, 'u');
/** Characters no address of any kind (phone number, messaging id) holds. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * The media types Genesys' endpoints accept (GENESYS.md): JSON for the API, a form for the token endpoint. A
 * parameter (`; charset=utf-8`) is allowed, as any HTTP server allows it.
 */
export function hasMediaType(contentType: string | undefined, expected: string): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === expected;
}
export const LIMITS = {
  subjectChars: 400,
  friendlyNameChars: 64,
  emailBodyBytes: 3 * 1024 * 1024,
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkAddress(value: unknown, field: string, problems: FieldProblem[]): void {
  if (!isObj(value)) {
    problems.push({ fieldName: field, errorCode: 'REQUIRED_OBJECT' });
    return;
  }
  unknownKeys(value, ['email', 'name'], field, problems);
  if (typeof value['email'] !== 'string' || !EMAIL.test(value['email'])) {
    problems.push({ fieldName: `${field}.email`, errorCode: 'INVALID_EMAIL_ADDRESS' });
  }
  if (value['name'] !== undefined) {
    if (typeof value['name'] !== 'string')
      problems.push({ fieldName: `${field}.name`, errorCode: 'INVALID_TYPE' });
    else if (value['name'].length > LIMITS.friendlyNameChars) {
      problems.push({ fieldName: `${field}.name`, errorCode: 'VALUE_TOO_LONG' });
    }
  }
}

function unknownKeys(value: Obj, allowed: readonly string[], field: string, problems: FieldProblem[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      problems.push({ fieldName: field ? `${field}.${key}` : key, errorCode: 'UNKNOWN_FIELD' });
  }
}

function optionalString(body: Obj, field: string, problems: FieldProblem[]): void {
  if (body[field] !== undefined && typeof body[field] !== 'string') {
    problems.push({ fieldName: field, errorCode: 'INVALID_TYPE' });
  }
}

/** AgentlessEmailSendRequestDto */
export function validateAgentlessEmail(body: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!isObj(body)) return [{ fieldName: 'body', errorCode: 'REQUIRED_OBJECT' }];
  unknownKeys(
    body,
    [
      'senderType',
      'fromAddress',
      'toAddresses',
      'replyToAddress',
      'conversationId',
      'subject',
      'textBody',
      'htmlBody',
    ],
    '',
    problems,
  );
  if (body['senderType'] !== 'Outbound')
    problems.push({ fieldName: 'senderType', errorCode: 'INVALID_VALUE' });
  checkAddress(body['fromAddress'], 'fromAddress', problems);
  const to = body['toAddresses'];
  if (!Array.isArray(to) || to.length !== 1) {
    problems.push({ fieldName: 'toAddresses', errorCode: 'EXACTLY_ONE_RECIPIENT' });
  } else {
    checkAddress(to[0], 'toAddresses[0]', problems);
  }
  if (body['replyToAddress'] !== undefined) checkAddress(body['replyToAddress'], 'replyToAddress', problems);
  for (const field of ['conversationId', 'subject', 'textBody', 'htmlBody'])
    optionalString(body, field, problems);
  if (typeof body['subject'] === 'string' && body['subject'].length > LIMITS.subjectChars) {
    problems.push({ fieldName: 'subject', errorCode: 'VALUE_TOO_LONG' });
  }
  for (const field of ['textBody', 'htmlBody']) {
    const text = body[field];
    if (typeof text === 'string' && Buffer.byteLength(text) > LIMITS.emailBodyBytes) {
      problems.push({ fieldName: field, errorCode: 'VALUE_TOO_LONG' });
    }
  }
  return problems;
}

export const MESSAGE_LIMITS = { smsTextChars: 765, otherTextChars: 2000 } as const;
const E164 = /^\+[1-9]\d{6,14}$/;

/** SendAgentlessOutboundMessageRequest */
export function validateAgentlessMessage(body: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!isObj(body)) return [{ fieldName: 'body', errorCode: 'REQUIRED_OBJECT' }];
  unknownKeys(
    body,
    [
      'fromAddress',
      'toAddress',
      'toAddressMessengerType',
      'textBody',
      'messagingTemplate',
      'useExistingActiveConversation',
    ],
    '',
    problems,
  );
  const type = body['toAddressMessengerType'];
  if (type !== 'sms' && type !== 'whatsapp' && type !== 'open') {
    problems.push({ fieldName: 'toAddressMessengerType', errorCode: 'INVALID_VALUE' });
  }
  const from = body['fromAddress'];
  if (typeof from !== 'string' || from === '') {
    problems.push({ fieldName: 'fromAddress', errorCode: 'REQUIRED_VALUE' });
  } else if (INVISIBLE.test(from)) {
    problems.push({ fieldName: 'fromAddress', errorCode: 'INVALID_VALUE' });
  }
  const to = body['toAddress'];
  if (typeof to !== 'string' || to === '') {
    problems.push({ fieldName: 'toAddress', errorCode: 'REQUIRED_VALUE' });
  } else if (INVISIBLE.test(to)) {
    problems.push({ fieldName: 'toAddress', errorCode: 'INVALID_VALUE' });
  } else if (type === 'sms' && !E164.test(to)) {
    problems.push({ fieldName: 'toAddress', errorCode: 'INVALID_PHONE_NUMBER' });
  }
  const text = body['textBody'];
  const template = body['messagingTemplate'];
  if (text === undefined && template === undefined) {
    problems.push({ fieldName: 'textBody', errorCode: 'TEXT_OR_TEMPLATE_REQUIRED' });
  }
  if (text !== undefined) {
    const limit = type === 'sms' ? MESSAGE_LIMITS.smsTextChars : MESSAGE_LIMITS.otherTextChars;
    if (typeof text !== 'string') problems.push({ fieldName: 'textBody', errorCode: 'INVALID_TYPE' });
    else if (text.length > limit) problems.push({ fieldName: 'textBody', errorCode: 'VALUE_TOO_LONG' });
  }
  if (type === 'whatsapp' && template === undefined) {
    problems.push({ fieldName: 'messagingTemplate', errorCode: 'REQUIRED_FOR_WHATSAPP' });
  }
  if (template !== undefined) checkMessagingTemplate(template, problems);
  const existing = body['useExistingActiveConversation'];
  if (existing !== undefined && typeof existing !== 'boolean') {
    problems.push({ fieldName: 'useExistingActiveConversation', errorCode: 'INVALID_TYPE' });
  }
  return problems;
}

function checkMessagingTemplate(template: unknown, problems: FieldProblem[]): void {
  const field = 'messagingTemplate';
  if (!isObj(template)) {
    problems.push({ fieldName: field, errorCode: 'REQUIRED_OBJECT' });
    return;
  }
  unknownKeys(
    template,
    ['responseId', 'bodyParameters', 'headerParameters', 'buttonUrlParameters'],
    field,
    problems,
  );
  if (typeof template['responseId'] !== 'string' || template['responseId'] === '') {
    problems.push({ fieldName: `${field}.responseId`, errorCode: 'REQUIRED_VALUE' });
  }
  for (const list of ['bodyParameters', 'headerParameters', 'buttonUrlParameters']) {
    const params = template[list];
    if (params === undefined) continue;
    if (!Array.isArray(params)) {
      problems.push({ fieldName: `${field}.${list}`, errorCode: 'INVALID_TYPE' });
      continue;
    }
    params.forEach((p: unknown, i) => {
      const at = `${field}.${list}[${i}]`;
      if (!isObj(p)) return problems.push({ fieldName: at, errorCode: 'REQUIRED_OBJECT' });
      unknownKeys(p, ['id', 'value'], at, problems);
      if (typeof p['id'] !== 'string') problems.push({ fieldName: `${at}.id`, errorCode: 'REQUIRED_VALUE' });
      if (typeof p['value'] !== 'string')
        problems.push({ fieldName: `${at}.value`, errorCode: 'REQUIRED_VALUE' });
    });
  }
}

export const CONTACT_LIMITS = { contactsPerRequest: 1000 } as const;

/** A JSON array of WritableDialerContact, each for the contact list named in the path. */
export function validateContacts(body: unknown, contactListId: string): FieldProblem[] {
  if (!Array.isArray(body)) return [{ fieldName: 'body', errorCode: 'REQUIRED_ARRAY' }];
  const problems: FieldProblem[] = [];
  if (body.length === 0 || body.length > CONTACT_LIMITS.contactsPerRequest) {
    problems.push({ fieldName: 'body', errorCode: 'INVALID_CONTACT_COUNT' });
  }
  body.forEach((contact: unknown, i) => {
    const at = `[${i}]`;
    if (!isObj(contact)) return problems.push({ fieldName: at, errorCode: 'REQUIRED_OBJECT' });
    unknownKeys(contact, ['id', 'contactListId', 'data', 'callable'], at, problems);
    if (contact['contactListId'] !== contactListId) {
      problems.push({ fieldName: `${at}.contactListId`, errorCode: 'CONTACT_LIST_MISMATCH' });
    }
    const data = contact['data'];
    if (!isObj(data) || Object.values(data).some((v) => typeof v !== 'string')) {
      problems.push({ fieldName: `${at}.data`, errorCode: 'INVALID_VALUE' });
    }
    if (contact['id'] !== undefined && typeof contact['id'] !== 'string') {
      problems.push({ fieldName: `${at}.id`, errorCode: 'INVALID_TYPE' });
    }
    if (contact['callable'] !== undefined && typeof contact['callable'] !== 'boolean') {
      problems.push({ fieldName: `${at}.callable`, errorCode: 'INVALID_TYPE' });
    }
  });
  return problems;
}
