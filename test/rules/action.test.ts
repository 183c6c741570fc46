import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { compileAction, type RenderedAgentlessEmail } from '../../src/rules/action.js';
import { templateScope } from '../../src/rules/template.js';

const action = compileAction(
  {
    agentlessEmail: {
      from: { email: 'orders@shop.example', name: 'Shop' },
      to: { email: '{{ customer.email }}', name: '{{ customer.name }}' },
      subject: 'Order {{ orderId }} for {{ customer.name }}',
      text: 'Hi {{ customer.name }}',
      html: '<p>Hi {{ customer.name }}</p>',
    },
  },
  'action',
);

function failure(event: unknown): BridgeError {
  try {
    action.render(templateScope(event));
  } catch (error) {
    expect(error).toBeInstanceOf(BridgeError);
    return error as BridgeError;
  }
  throw new Error('expected rendering to fail');
}

describe('agentlessEmail rendering', () => {
  it('renders every field from the event', () => {
    expect(action.render(templateScope({ orderId: 7, customer: { email: 'a@b.co', name: 'Ann' } }))).toEqual({
      kind: 'agentlessEmail',
      from: { email: 'orders@shop.example', name: 'Shop' },
      to: { email: 'a@b.co', name: 'Ann' },
      subject: 'Order 7 for Ann',
      text: 'Hi Ann',
      html: '<p>Hi Ann</p>',
    });
  });

  it('escapes HTML in the html body only', () => {
    const out = action.render(
      templateScope({ orderId: 1, customer: { email: 'a@b.co', name: '<b>Ann & co</b>' } }),
    ) as RenderedAgentlessEmail;
    expect(out.html).toBe('<p>Hi &lt;b&gt;Ann &amp; co&lt;/b&gt;</p>');
    expect(out.text).toBe('Hi <b>Ann & co</b>');
  });

  it('strips CR and LF from subjects and names so an event cannot inject headers', () => {
    const out = action.render(
      templateScope({ orderId: '1\r\nBcc: x@evil.example', customer: { email: 'a@b.co', name: 'Ann\nX' } }),
    ) as RenderedAgentlessEmail;
    expect(out.subject).toBe('Order 1 Bcc: x@evil.example for Ann X');
    expect(out.to.name).toBe('Ann X');
  });

  it('fails the event, naming the field and the variable, when a variable is missing', () => {
    const error = failure({ orderId: 1, customer: { email: 'a@b.co' } });
    expect(error.code).toBe('TEMPLATE_VARIABLE_MISSING');
    expect(error.message).toContain('customer.name');
    expect(error.disposition).toBe('dead-letter');
  });

  it('treats null as missing rather than rendering an empty string', () => {
    expect(failure({ orderId: 1, customer: { email: 'a@b.co', name: null } }).code).toBe(
      'TEMPLATE_VARIABLE_MISSING',
    );
  });

  it('refuses a rendered address that is not an email address, without quoting it', () => {
    const error = failure({ orderId: 1, customer: { email: 'not-an-address', name: 'Ann' } });
    expect(error.code).toBe('INVALID_ADDRESS');
    expect(error.message).not.toContain('not-an-address');
  });
});
