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
