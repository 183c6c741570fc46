import { BridgeError } from '../errors.js';
import type { InboundMessage } from './message.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export type Decoded = { readonly kind: 'event'; readonly event: unknown } | { readonly kind: 'tombstone' };

/**
 * Turns a record's value into the event that rules see. Plain UTF-8 JSON for now. A null value is a tombstone
 * (compaction's delete marker): it carries no event, so it is skipped rather than dead-lettered.
 */
export function decode(message: InboundMessage): Decoded {
  if (message.value === null) return { kind: 'tombstone' };
  let text: string;
  try {
    text = utf8.decode(message.value);
  } catch {
    throw new BridgeError('DECODE_FAILED', 'the value is not valid UTF-8');
  }
  try {
    return { kind: 'event', event: JSON.parse(text) as unknown };
  } catch (error) {
    // JSON.parse's message quotes the offending text, which may be personal data: keep only the position.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new BridgeError(
      'DECODE_FAILED',
      `the value is not JSON${position ? ` (error at position ${position})` : ''}`,
    );
  }
}
