/** One Kafka record as the pipeline sees it: plain data, independent of the kafkajs types. */
export interface InboundMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;
  /** Broker or producer timestamp, epoch milliseconds as a string (kafkajs' form). */
  readonly timestamp: string;
}

export function coordinatesOf(message: InboundMessage): string {
  return `${message.topic}/${message.partition}/${message.offset}`;
}

export function keyOf(message: InboundMessage): string | undefined {
  return message.key === null ? undefined : message.key.toString('utf8');
}

/** The key and headers as `$kafka` patterns see them: UTF-8 text, a repeated header as an array. */
export function kafkaMetaOf(message: Pick<InboundMessage, 'key' | 'headers'>): {
  key?: string;
  headers: Record<string, string | string[]>;
} {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.map((v) => v.toString()) : value.toString();
  }
  return message.key === null ? { headers } : { key: message.key.toString('utf8'), headers };
}
