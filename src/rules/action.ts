import { BridgeError } from '../errors.js';
import { compileTemplate, type Template, type TemplateMode } from './template.js';

/** What a rule's action says, as written in the rules file (every string a template). */
export interface RawAddress {
  readonly email: string;
  readonly name?: string;
}
export interface RawAgentlessEmail {
  readonly from: RawAddress;
  readonly to: RawAddress;
  readonly replyTo?: RawAddress;
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
  readonly conversationId?: string;
}
export interface RawAction {
  readonly agentlessEmail?: RawAgentlessEmail;
}

/** An action rendered for one event: plain values, ready to become a Genesys request body. */
export interface RenderedAddress {
  readonly email: string;
  readonly name?: string;
}
export interface RenderedAgentlessEmail {
  readonly kind: 'agentlessEmail';
  readonly from: RenderedAddress;
  readonly to: RenderedAddress;
  readonly replyTo?: RenderedAddress;
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
  readonly conversationId?: string;
}
export type RenderedAction = RenderedAgentlessEmail;
export type ActionKind = RenderedAction['kind'];

export interface CompiledAction {
  readonly kind: ActionKind;
  render(scope: Record<string, unknown>): RenderedAction;
}

const EMAIL = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+\.[^\s@<>()[\]",;:\\]+$/;

export function compileAction(raw: RawAction, path: string): CompiledAction {
  if (raw.agentlessEmail) return compileAgentlessEmail(raw.agentlessEmail, `${path}.agentlessEmail`);
  // The schema guarantees exactly one action; reaching here means the schema and this code disagree.
  throw new Error(`${path}: no known action`);
}

/** A mistake in an action that the JSON Schema cannot express; reported with the rule's location. */
export class ActionDefinitionError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ActionDefinitionError';
  }
}

function compileAgentlessEmail(raw: RawAgentlessEmail, path: string): CompiledAction {
  if (raw.text === undefined && raw.html === undefined) {
    throw new ActionDefinitionError(path, 'needs a "text" or an "html" body');
  }
  const from = compileAddress(raw.from, `${path}.from`);
  const to = compileAddress(raw.to, `${path}.to`);
  const replyTo = raw.replyTo ? compileAddress(raw.replyTo, `${path}.replyTo`) : undefined;
  const subject = optional(raw.subject, `${path}.subject`, 'header');
  const text = optional(raw.text, `${path}.text`, 'text');
  const html = optional(raw.html, `${path}.html`, 'html');
  const conversationId = optional(raw.conversationId, `${path}.conversationId`, 'header');
  return {
    kind: 'agentlessEmail',
    render(scope) {
      return {
        kind: 'agentlessEmail',
        from: from(scope),
        to: to(scope),
        ...(replyTo && { replyTo: replyTo(scope) }),
        ...(subject && { subject: subject.render(scope) }),
        ...(text && { text: text.render(scope) }),
        ...(html && { html: html.render(scope) }),
        ...(conversationId && { conversationId: conversationId.render(scope) }),
      };
    },
  };
}

function compileAddress(raw: RawAddress, path: string): (scope: Record<string, unknown>) => RenderedAddress {
  const email = compileTemplate(raw.email, `${path}.email`, 'header');
  const name = optional(raw.name, `${path}.name`, 'header');
  return (scope) => {
    const address = email.render(scope);
    if (!EMAIL.test(address)) {
      throw new BridgeError('INVALID_ADDRESS', `${email.field}: the rendered value is not an email address`);
    }
    return name ? { email: address, name: name.render(scope) } : { email: address };
  };
}

function optional(source: string | undefined, field: string, mode: TemplateMode): Template | undefined {
  return source === undefined ? undefined : compileTemplate(source, field, mode);
}
