/**
 * Jupyter wire protocol v5: [identities…, "<IDS|MSG>", hmac, header, parent,
 * metadata, content, buffers…]. Every incoming message must carry a valid
 * signature (compared in constant time) that has not been seen before.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = '5.3';
const DELIM = Buffer.from('<IDS|MSG>');

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface Message<C = Record<string, unknown>> {
  identities: Buffer[];
  header: Header;
  parent_header: Partial<Header>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Buffer[];
}

export class InvalidMessage extends Error {
  constructor(why: string) {
    super(`rejected a message: ${why}`);
    this.name = 'InvalidMessage';
  }
}

export class Signer {
  /** signatures already accepted; a replayed message is rejected */
  private readonly seen = new Set<string>();
  private readonly order: string[] = [];

  constructor(private readonly key: string, private readonly digest: string) {}

  sign(parts: (Buffer | string)[]): string {
    // An empty key means "no authentication" in the spec; tslab crashed on it instead.
    if (this.key === '') return '';
    const h = createHmac(this.digest, this.key);
    for (const p of parts) h.update(p);
    return h.digest('hex');
  }

  verify(signature: string, parts: Buffer[]): void {
    if (this.key === '') return;
    const expected = Buffer.from(this.sign(parts), 'utf8');
    const got = Buffer.from(signature, 'utf8');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new InvalidMessage('bad HMAC signature');
    if (this.seen.has(signature)) throw new InvalidMessage('duplicate signature (replayed message)');
    this.seen.add(signature);
    this.order.push(signature);
    if (this.order.length > 4096) this.seen.delete(this.order.shift()!);
  }
}

export function decode(frames: Buffer[], signer: Signer): Message {
  const d = frames.findIndex((f) => f.equals(DELIM));
  if (d < 0) throw new InvalidMessage('no <IDS|MSG> delimiter');
  if (frames.length < d + 6) throw new InvalidMessage(`expected 5 frames after the delimiter, got ${frames.length - d - 1}`);
  const signature = frames[d + 1]!.toString('utf8');
  const parts = frames.slice(d + 2, d + 6);
  signer.verify(signature, parts);
  const json = (b: Buffer, what: string) => {
    try {
      const v = JSON.parse(b.toString('utf8'));
      if (typeof v !== 'object' || v === null) throw new Error('not an object');
      return v;
    } catch (e) {
      throw new InvalidMessage(`${what} is not a JSON object (${(e as Error).message})`);
    }
  };
  const header = json(parts[0]!, 'header') as Header;
  if (typeof header.msg_type !== 'string' || typeof header.msg_id !== 'string') throw new InvalidMessage('header lacks msg_id/msg_type');
  return {
    identities: frames.slice(0, d),
    header,
    parent_header: json(parts[1]!, 'parent_header'),
    metadata: json(parts[2]!, 'metadata'),
    content: json(parts[3]!, 'content'),
    buffers: frames.slice(d + 6),
  };
}

export function encode(msg: Message<unknown>, signer: Signer): Buffer[] {
  const parts = [msg.header, msg.parent_header, msg.metadata, msg.content].map((p) => Buffer.from(JSON.stringify(p), 'utf8'));
  return [...msg.identities, DELIM, Buffer.from(signer.sign(parts), 'utf8'), ...parts, ...msg.buffers];
}

/** A message in reply to (or caused by) `parent`, in the kernel's own session. */
export function child<C>(parent: Message<unknown> | undefined, msgType: string, content: C, session: string, identities: Buffer[] = []): Message<C> {
  return {
    identities,
    header: {
      msg_id: randomUUID(),
      msg_type: msgType,
      session,
      username: parent?.header.username ?? 'kernel',
      date: new Date().toISOString(),
      version: PROTOCOL_VERSION,
    },
    parent_header: parent?.header ?? {},
    metadata: {},
    content,
    buffers: [],
  };
}
