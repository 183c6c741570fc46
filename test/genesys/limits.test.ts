import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { GENESYS_LIMITS, checkedRequestFor } from '../../src/genesys/limits.js';
import { compileAction, type RawAction } from '../../src/rules/action.js';
import { templateScope } from '../../src/rules/template.js';
import { validateAgentlessEmail, validateAgentlessMessage } from '../../src/simulator/validation.js';

const email = (fields: Record<string, unknown> = {}): RawAction => ({
  agentlessEmail: {
    from: { email: 'orders@shop.example', name: '{{ fromName }}' },
    to: { email: '{{ to }}', name: '{{ toName }}' },
    replyTo: { email: 'help@shop.example', name: '{{ replyName }}' },
    subject: '{{ subject }}',
    text: '{{ text }}',
    html: '{{ html }}',
    ...fields,
  },
});
const message = (messengerType: 'sms' | 'open'): RawAction => ({
  agentlessMessage: { messengerType, from: '+15550000000', to: '{{ to }}', text: '{{ text }}' },
});
const contact: RawAction = { campaignContact: { contactListId: 'list-1', data: { note: '{{ text }}' } } };

const okEmail = {
  to: 'ada@example.com',
  fromName: 'Shop',
  toName: 'Ada',
  replyName: 'Help',
  subject: 'Hi',
  text: 'Hello',
  html: '<p>Hello</p>',
};
const X = 'ž'; // two bytes in UTF-8: byte limits and character limits differ
const chars = (n: number) => X.repeat(n);
const ascii = (n: number) => 'a'.repeat(n);

/** [what, action, event, expected code or null, the field the message must name] */
const CASES: [string, RawAction, Record<string, unknown>, string | null, string][] = [
  ['email within every limit', email(), okEmail, null, ''],
  ['subject at 400', email(), { ...okEmail, subject: chars(400) }, null, ''],
  ['subject over 400', email(), { ...okEmail, subject: chars(401) }, 'GENESYS_LIMIT_EXCEEDED', 'subject'],
  ['from name at 64', email(), { ...okEmail, fromName: chars(64) }, null, ''],
  [
    'from name over 64',
    email(),
    { ...okEmail, fromName: chars(65) },
    'GENESYS_LIMIT_EXCEEDED',
    'fromAddress.name',
  ],
  [
    'to name over 64',
    email(),
    { ...okEmail, toName: chars(65) },
    'GENESYS_LIMIT_EXCEEDED',
    'toAddresses[0].name',
  ],
  [
    'reply-to name over 64',
    email(),
    { ...okEmail, replyName: chars(65) },
    'GENESYS_LIMIT_EXCEEDED',
    'replyToAddress.name',
  ],
  [
    'text body over 3 MB',
    email({ html: undefined }),
    { ...okEmail, text: ascii(GENESYS_LIMITS.emailBodyBytes + 1) },
    'GENESYS_LIMIT_EXCEEDED',
    'textBody',
  ],
  [
    'html body over 3 MB (in bytes, not characters)',
    email({ text: undefined }),
    { ...okEmail, html: chars(GENESYS_LIMITS.emailBodyBytes / 2 + 1) },
    'GENESYS_LIMIT_EXCEEDED',
    'htmlBody',
  ],
  [
    'request body over 512000 bytes',
    email(),
    { ...okEmail, text: ascii(300_000), html: ascii(300_000) },
    'GENESYS_LIMIT_EXCEEDED',
    'request body',
  ],
  [
    'two recipients',
    email(),
    { ...okEmail, to: 'ada@example.com, bob@example.com' },
    'INVALID_ADDRESS',
    'to.email',
  ],
  ['malformed address', email(), { ...okEmail, to: 'ada@example' }, 'INVALID_ADDRESS', 'to.email'],
  ['SMS at 765', message('sms'), { to: '+447700900123', text: chars(765) }, null, ''],
  [
    'SMS over 765',
    message('sms'),
    { to: '+447700900123', text: chars(766) },
    'GENESYS_LIMIT_EXCEEDED',
    'textBody',
  ],
  [
    'SMS to a number not in E.164',
    message('sms'),
    { to: '07700 900123', text: 'hi' },
    'INVALID_ADDRESS',
    '.to',
  ],
  ['open message at 2000', message('open'), { to: 'user-1', text: chars(2000) }, null, ''],
  [
    'open message over 2000',
    message('open'),
    { to: 'user-1', text: chars(2001) },
    'GENESYS_LIMIT_EXCEEDED',
    'textBody',
  ],
  ['contact over 512000 bytes', contact, { text: ascii(512_001) }, 'GENESYS_LIMIT_EXCEEDED', 'request body'],
];

describe("Genesys' limits are checked before sending", () => {
  it.each(CASES)('%s', (_what, raw, event, code, field) => {
    const action = compileAction(raw, 'rules[0].action');
    let error: unknown;
    let request;
    try {
      request = checkedRequestFor(action.render(templateScope(event)));
    } catch (e) {
      error = e;
    }
    if (code === null) {
      expect(error).toBeUndefined();
      // The simulator, an independent referee, accepts what passes.
      const validate = 'agentlessEmail' in raw ? validateAgentlessEmail : validateAgentlessMessage;
      expect(validate(request?.body)).toEqual([]);
      return;
    }
    expect(error).toBeInstanceOf(BridgeError);
    const { code: actual, disposition, message } = error as BridgeError;
    expect(actual).toBe(code);
    expect(disposition).toBe('dead-letter');
    expect(message).toContain(field);
    // The reason names the field and the limit, never the value.
    for (const value of Object.values(event)) {
      if (typeof value === 'string' && value.length > 3) expect(message).not.toContain(value);
    }
  });
});
