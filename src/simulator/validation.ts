/**
 * Validates request bodies the way Genesys does (GENESYS.md), so that tests catch a body Genesys would refuse.
 * Returns the problems as Genesys' `details` entries: a field name and an error code each.
 */
export interface FieldProblem {
  readonly fieldName: string;
  readonly errorCode: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
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
