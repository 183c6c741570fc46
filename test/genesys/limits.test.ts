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

/** [name, character]: each one must leave header fields and be refused in addresses. */
const CONTROLS: [string, string][] = [
  ['NUL', '\u0000'],
  ['TAB', '\t'],
  ['VT', '\u000b'],
  ['FF', '\u000c'],
  ['CR', '\r'],
  ['LF', '\n'],
  ['ESC', '\u001b'],
  ['DEL', '\u007f'],
  ['NEL (U+0085)', '\u0085'],
  ['C1 CSI (U+009B)', '\u009b'],
  ['LINE SEPARATOR (U+2028)', '\u2028'],
  ['PARAGRAPH SEPARATOR (U+2029)', '\u2029'],
];
const INVISIBLE: [string, string][] = [
  ['ZERO WIDTH SPACE (U+200B)', '\u200b'],
  ['ZERO WIDTH NON-JOINER (U+200C)', '\u200c'],
  ['ZERO WIDTH JOINER (U+200D)', '\u200d'],
  ['WORD JOINER (U+2060)', '\u2060'],
  ['BOM (U+FEFF)', '\ufeff'],
  ['LEFT-TO-RIGHT MARK (U+200E)', '\u200e'],
  ['RIGHT-TO-LEFT MARK (U+200F)', '\u200f'],
  ['ARABIC LETTER MARK (U+061C)', '\u061c'],
  ['LRE (U+202A)', '\u202a'],
  ['RLE (U+202B)', '\u202b'],
  ['PDF (U+202C)', '\u202c'],
  ['LRO (U+202D)', '\u202d'],
  ['RLO (U+202E)', '\u202e'],
  ['LRI (U+2066)', '\u2066'],
  ['RLI (U+2067)', '\u2067'],
  ['FSI (U+2068)', '\u2068'],
  ['PDI (U+2069)', '\u2069'],
];

function rendered(raw: RawAction, event: Record<string, unknown>) {
  return checkedRequestFor(compileAction(raw, 'rules[0].action').render(templateScope(event)));
}

function refused(attempt: () => unknown): BridgeError {
  try {
    attempt();
  } catch (error) {
    expect(error).toBeInstanceOf(BridgeError);
    return error as BridgeError;
  }
  throw new Error('expected INVALID_ADDRESS, but the request was built');
}

describe('header fields lose every control character and line/paragraph separator', () => {
  it.each(CONTROLS)('%s', (_name, c) => {
    const body = rendered(email(), {
      ...okEmail,
      subject: `Your order${c}Bcc: all@evil.example${c}`,
      fromName: `Shop${c}X-Injected: 1`,
      toName: `${c}Ada${c}${c}Lovelace`,
      replyName: `Help${c}`,
    }).body as { subject: string; fromAddress: { name: string }; toAddresses: { name: string }[] };
    expect(body.subject).toBe('Your order Bcc: all@evil.example');
    expect(body.fromAddress.name).toBe('Shop X-Injected: 1');
    expect(body.toAddresses[0]?.name).toBe('Ada Lovelace');
    expect(JSON.stringify(body)).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
    expect(validateAgentlessEmail(body)).toEqual([]);
  });

  it('keeps text that is only unusual: right-to-left names, emoji, non-breaking spaces', () => {
    const body = rendered(email(), { ...okEmail, subject: 'שלום 👋\u00a0Ada', toName: 'مرحبا' }).body as {
      subject: string;
      toAddresses: { name: string }[];
    };
    expect(body.subject).toBe('שלום 👋\u00a0Ada');
    expect(body.toAddresses[0]?.name).toBe('مرحبا');
  });
});

describe('addresses with control, zero-width or bidirectional characters are refused', () => {
  it.each([...CONTROLS, ...INVISIBLE])('%s', (_name, c) => {
    for (const [raw, event] of [
      [email(), { ...okEmail, to: `ada${c}@example.com` }],
      [email(), { ...okEmail, to: `ada@exa${c}mple.com` }],
      [email({ from: { email: 'orders{{ x }}@shop.example' } }), { ...okEmail, x: c }],
    ] as const) {
      const error = refused(() => rendered(raw, event));
      expect(error.code).toBe('INVALID_ADDRESS');
      expect(error.disposition).toBe('dead-letter');
      expect(error.message).not.toContain('ada');
    }
    // Whatever rendered the action (templates fold line breaks first), the guard has the last word.
    for (const to of [`user${c}-1`, `user-1${c}`, `${c}+447700900123`]) {
      const action = {
        kind: 'agentlessMessage',
        messengerType: 'open',
        from: 'shop',
        to,
        text: 'hi',
      } as const;
      const error = refused(() => checkedRequestFor(action));
      expect(error.code).toBe('INVALID_ADDRESS');
      expect(error.message).toContain('toAddress');
      expect(error.message).not.toContain('user');
    }
    const fromAddress = {
      kind: 'agentlessEmail',
      from: { email: `o${c}@shop.example` },
      to: { email: 'a@b.example' },
      text: 'hi',
    } as const;
    expect(refused(() => checkedRequestFor(fromAddress)).message).toContain('fromAddress.email');
  });

  it('names the field and the code point, not the address', () => {
    const error = refused(() => rendered(email(), { ...okEmail, to: 'ada@\u202eelpmaxe.com' }));
    expect(error.message).toContain('toAddresses[0].email');
    expect(error.message).toContain('U+202E');
  });
});
