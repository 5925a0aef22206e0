/** The five kernel sockets, bound only to the connection file's address. */
import { Worker } from 'node:worker_threads';
import type * as Zmq from 'zeromq';
import { endpoint, type ConnectionInfo } from './connection.js';
import { decode, encode, InvalidMessage, Signer, type Message } from './wire.js';
import { loadZmq } from './zmq.js';
import { log } from './log.js';

export type Incoming = 'shell' | 'control';
type Outgoing = Incoming | 'iopub' | 'stdin';

export class KernelSockets {
  readonly signer: Signer;
  private readonly socks: Record<Outgoing, Zmq.Router | Zmq.Publisher>;
  /** sends still in flight, so flush() can wait for them */
  private readonly sendChain: Record<Outgoing, Promise<void>> = { shell: Promise.resolve(), control: Promise.resolve(), iopub: Promise.resolve(), stdin: Promise.resolve() };
  private heartbeat?: Worker | Zmq.Reply;

  private constructor(private readonly info: ConnectionInfo) {
    const zmq = loadZmq();
    this.signer = new Signer(info.key, info.digest);
    this.socks = {
      shell: new zmq.Router({ linger: 0 }),
      control: new zmq.Router({ linger: 0 }),
      stdin: new zmq.Router({ linger: 0 }),
      iopub: new zmq.Publisher({ linger: 0 }),
    };
  }

  static async bind(info: ConnectionInfo): Promise<KernelSockets> {
    const k = new KernelSockets(info);
    await Promise.all((['shell', 'control', 'stdin', 'iopub'] as const).map((c) => k.socks[c].bind(endpoint(info, c))));
    await k.startHeartbeat();
    return k;
  }

  private async startHeartbeat(): Promise<void> {
    const ep = endpoint(this.info, 'hb');
    const worker = new Worker(new URL('./heartbeat.js', import.meta.url), { workerData: { endpoint: ep } });
    const answer = await new Promise<string>((resolve) => {
      worker.once('message', (m) => resolve(String(m)));
      worker.once('error', (e) => resolve(`error: ${e.message}`));
    });
    if (answer === 'bound') {
      worker.unref();
      this.heartbeat = worker;
      return;
    }
    // A zeromq build that cannot load in a worker still gets a heartbeat, on the main thread.
    log(`heartbeat worker failed (${answer}); echoing on the main thread`);
    await worker.terminate();
    const rep = new (loadZmq().Reply)({ linger: 0 });
    await rep.bind(ep);
    this.heartbeat = rep;
    void (async () => {
      for await (const frames of rep) await rep.send(frames);
    })().catch(() => {});
  }

  /** Calls `handler` for each authentic message; forged or malformed ones are logged and dropped. */
  listen(channel: Incoming, handler: (msg: Message) => void): void {
    const sock = this.socks[channel] as Zmq.Router;
    void (async () => {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = decode(frames, this.signer);
        } catch (e) {
          if (e instanceof InvalidMessage) {
            log(`${channel}: ${e.message}`);
            continue;
          }
          throw e;
        }
        try {
          handler(msg);
        } catch (e) {
          log(`${channel}: handling ${msg.header.msg_type} failed: ${(e as Error).stack ?? e}`);
        }
      }
    })().catch((e) => {
      if (!sock.closed) log(`${channel} socket stopped: ${(e as Error).message}`);
    });
  }

  /**
   * Hands the message to zmq now. Awaiting each send before the next would
   * hold messages back until the event loop turns, which a cell stuck in
   * synchronous code never lets happen. Only a socket at its high-water mark
   * answers EBUSY; those messages wait their turn.
   */
  send(channel: Outgoing, msg: Message<unknown>): void {
    const sock = this.socks[channel];
    if (sock.closed) return;
    const frames = encode(msg, this.signer);
    const failed = (e: unknown) => {
      if (!sock.closed) log(`send on ${channel} failed: ${(e as Error).message}`);
    };
    const sent = sock.send(frames).catch((e: { code?: string }) => {
      if (e?.code !== 'EBUSY') return failed(e);
      this.sendChain[channel] = this.sendChain[channel].then(() => sock.send(frames)).catch(failed);
      return this.sendChain[channel];
    });
    this.sendChain[channel] = this.sendChain[channel].then(() => sent);
  }

  /** Resolves once every queued message has been handed to zmq. */
  async flush(): Promise<void> {
    await Promise.all(Object.values(this.sendChain));
  }

  /** Exiting while the heartbeat worker still holds a zmq socket aborts the process, so it ends first. */
  async close(): Promise<void> {
    for (const s of Object.values(this.socks)) s.close();
    const hb = this.heartbeat;
    if (hb instanceof Worker) {
      const exited = new Promise((r) => hb.once('exit', r));
      hb.postMessage('close');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
      await hb.terminate();
    } else {
      hb?.close();
    }
  }
}
