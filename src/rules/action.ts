import { BridgeError } from '../errors.js';
import { compileTemplate, type Template, type TemplateMode } from './template.js';

/** A body written inline, or kept in a file next to the rules file (`html: { file: templates/x.html }`). */
export type RawBody = string | { readonly file: string };

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
  readonly text?: RawBody;
  readonly html?: RawBody;
  readonly conversationId?: string;
}
export type MessengerType = 'sms' | 'whatsapp' | 'open';
export interface RawParameter {
  readonly id: string;
  readonly value: string;
}
export interface RawMessagingTemplate {
  readonly responseId: string;
  readonly bodyParameters?: readonly RawParameter[];
  readonly headerParameters?: readonly RawParameter[];
  readonly buttonUrlParameters?: readonly RawParameter[];
}
export interface RawAgentlessMessage {
  readonly messengerType: MessengerType;
  readonly from: string;
  readonly to: string;
  readonly text?: RawBody;
  readonly template?: RawMessagingTemplate;
  readonly useExistingActiveConversation?: boolean;
}
export interface RawCampaignContact {
  readonly contactListId: string;
  readonly id?: string;
  readonly data: Readonly<Record<string, string>>;
  readonly callable?: boolean;
  readonly priority?: boolean;
  readonly clearSystemData?: boolean;
  readonly doNotQueue?: boolean;
}
export interface RawAction {
  readonly agentlessEmail?: RawAgentlessEmail;
  readonly agentlessMessage?: RawAgentlessMessage;
  readonly campaignContact?: RawCampaignContact;
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
export interface RenderedParameter {
  readonly id: string;
  readonly value: string;
}
export interface RenderedMessagingTemplate {
  readonly responseId: string;
  readonly bodyParameters?: RenderedParameter[];
  readonly headerParameters?: RenderedParameter[];
  readonly buttonUrlParameters?: RenderedParameter[];
}
export interface RenderedAgentlessMessage {
  readonly kind: 'agentlessMessage';
  readonly messengerType: MessengerType;
  readonly from: string;
  readonly to: string;
  readonly text?: string;
  readonly template?: RenderedMessagingTemplate;
  readonly useExistingActiveConversation?: boolean;
}
export interface RenderedCampaignContact {
  readonly kind: 'campaignContact';
  readonly contactListId: string;
  readonly id?: string;
  readonly data: Record<string, string>;
  readonly callable?: boolean;
  readonly options: { readonly priority?: boolean; clearSystemData?: boolean; doNotQueue?: boolean };
}
export type RenderedAction = RenderedAgentlessEmail | RenderedAgentlessMessage | RenderedCampaignContact;
export type ActionKind = RenderedAction['kind'];

export interface CompiledAction {
  readonly kind: ActionKind;
  render(scope: Record<string, unknown>): RenderedAction;
}

/** Reads a template file named relative to the rules file. */
export type TemplateFileReader = (file: string) => string;

/** A template file the rules file may not read (outside the folders it is granted); the message says why. */
export class TemplateFileRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateFileRefusedError';
  }
}

const EMAIL = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+\.[^\s@<>()[\]",;:\\]+$/;
const E164 = /^\+[1-9]\d{6,14}$/;
/** Genesys ids are UUIDs; anything that could leave the path segment (/, ?, #, %, ..) is refused. */
const PATH_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

const noFiles: TemplateFileReader = (file) => {
  throw new Error(`template files are not available here (${file})`);
};

export function compileAction(
  raw: RawAction,
  path: string,
  readTemplateFile: TemplateFileReader = noFiles,
): CompiledAction {
  if (raw.agentlessEmail)
    return compileAgentlessEmail(raw.agentlessEmail, `${path}.agentlessEmail`, readTemplateFile);
  if (raw.agentlessMessage)
    return compileAgentlessMessage(raw.agentlessMessage, `${path}.agentlessMessage`, readTemplateFile);
  if (raw.campaignContact) return compileCampaignContact(raw.campaignContact, `${path}.campaignContact`);
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

function compileAgentlessEmail(
  raw: RawAgentlessEmail,
  path: string,
  readFile: TemplateFileReader,
): CompiledAction {
  if (raw.text === undefined && raw.html === undefined) {
    throw new ActionDefinitionError(path, 'needs a "text" or an "html" body');
  }
  const from = compileAddress(raw.from, `${path}.from`);
  const to = compileAddress(raw.to, `${path}.to`);
  const replyTo = raw.replyTo ? compileAddress(raw.replyTo, `${path}.replyTo`) : undefined;
  const subject = optional(raw.subject, `${path}.subject`, 'header');
  const text = body(raw.text, `${path}.text`, 'text', readFile);
  const html = body(raw.html, `${path}.html`, 'html', readFile);
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

function compileAgentlessMessage(
  raw: RawAgentlessMessage,
  path: string,
  readFile: TemplateFileReader,
): CompiledAction {
  if ((raw.text === undefined) === (raw.template === undefined)) {
    throw new ActionDefinitionError(path, 'needs either a "text" or a "template", not both');
  }
  if (raw.messengerType === 'whatsapp' && raw.template === undefined) {
    throw new ActionDefinitionError(path, 'WhatsApp messages need a "template" (a messaging template)');
  }
  const from = compileTemplate(raw.from, `${path}.from`, 'header');
  const to = compileTemplate(raw.to, `${path}.to`, 'header');
  const text = body(raw.text, `${path}.text`, 'text', readFile);
  const template = raw.template ? compileMessagingTemplate(raw.template, `${path}.template`) : undefined;
  const messengerType = raw.messengerType;
  return {
    kind: 'agentlessMessage',
    render(scope) {
      const toAddress = to.render(scope);
      if (messengerType === 'sms' && !E164.test(toAddress)) {
        throw new BridgeError(
          'INVALID_ADDRESS',
          `${to.field}: the rendered value is not an E.164 phone number`,
        );
      }
      return {
        kind: 'agentlessMessage',
        messengerType,
        from: from.render(scope),
        to: toAddress,
        ...(text && { text: text.render(scope) }),
        ...(template && { template: template(scope) }),
        ...(raw.useExistingActiveConversation !== undefined && {
          useExistingActiveConversation: raw.useExistingActiveConversation,
        }),
      };
    },
  };
}

function compileMessagingTemplate(
  raw: RawMessagingTemplate,
  path: string,
): (scope: Record<string, unknown>) => RenderedMessagingTemplate {
  const responseId = compileTemplate(raw.responseId, `${path}.responseId`, 'header');
  const lists = (['bodyParameters', 'headerParameters', 'buttonUrlParameters'] as const).map((name) => {
    const params = raw[name];
    if (params === undefined) return undefined;
    const compiled = params.map((p, i) => ({
      id: p.id,
      value: compileTemplate(p.value, `${path}.${name}.${i}.value`, 'text'),
    }));
    return { name, compiled };
  });
  return (scope) => {
    const out: { -readonly [K in keyof RenderedMessagingTemplate]: RenderedMessagingTemplate[K] } = {
      responseId: responseId.render(scope),
    };
    for (const list of lists) {
      if (list) out[list.name] = list.compiled.map((p) => ({ id: p.id, value: p.value.render(scope) }));
    }
    return out;
  };
}

function compileCampaignContact(raw: RawCampaignContact, path: string): CompiledAction {
  const contactListId = compileTemplate(raw.contactListId, `${path}.contactListId`, 'header');
  const id = optional(raw.id, `${path}.id`, 'header');
  const columns = Object.entries(raw.data).map(
    ([column, source]) => [column, compileTemplate(source, `${path}.data.${column}`, 'text')] as const,
  );
  const options = {
    ...(raw.priority !== undefined && { priority: raw.priority }),
    ...(raw.clearSystemData !== undefined && { clearSystemData: raw.clearSystemData }),
    ...(raw.doNotQueue !== undefined && { doNotQueue: raw.doNotQueue }),
  };
  return {
    kind: 'campaignContact',
    render(scope) {
      const list = contactListId.render(scope);
      // The id becomes a URL path segment: an event must not be able to point the call elsewhere.
      if (!PATH_ID.test(list)) {
        throw new BridgeError(
          'INVALID_FIELD_VALUE',
          `${contactListId.field}: the rendered value is not a contact list id (letters, digits, "-" and "_")`,
        );
      }
      const data: Record<string, string> = {};
      for (const [column, template] of columns) data[column] = template.render(scope);
      return {
        kind: 'campaignContact',
        contactListId: list,
        ...(id && { id: id.render(scope) }),
        data,
        ...(raw.callable !== undefined && { callable: raw.callable }),
        options,
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

function body(
  source: RawBody | undefined,
  field: string,
  mode: TemplateMode,
  readFile: TemplateFileReader,
): Template | undefined {
  if (source === undefined || typeof source === 'string') return optional(source, field, mode);
  let text: string;
  try {
    text = readFile(source.file);
  } catch (error) {
    if (error instanceof TemplateFileRefusedError) {
      throw new ActionDefinitionError(`${field}.file`, `template file "${source.file}" ${error.message}`);
    }
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ActionDefinitionError(
      `${field}.file`,
      `cannot read template file "${source.file}" (${reason})`,
    );
  }
  return compileTemplate(text, field, mode, source.file);
}
