/** The kernel sockets, bound only to the connection file's address. */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type * as Zmq from 'zeromq';
import { endpoint, type ConnectionInfo } from './connection.js';
import { ControlThread, type ControlNotice } from './control.js';
import { SendQueue } from './send-queue.js';
import type { SharedState } from './shared-state.js';
import { watchParent } from './parent-watch.js';
import { decode, encode, InvalidMessage, Signer, type Message } from './wire.js';
import { loadZmq } from './zmq.js';
import { log } from './log.js';

export type Incoming = 'shell' | 'control';
type Outgoing = Incoming | 'iopub' | 'stdin';
type MainChannel = 'shell' | 'stdin' | 'iopub';

/** `answered`: the control thread already replied to it (interrupt_request) */
export type Handler = (msg: Message, answered: boolean) => void;

const FLUSH_LIMIT_MS = 2000;

export class KernelSockets {
  readonly signer: Signer;
  /** the kernel's session id, shared with the control thread's own replies */
  readonly session: string = randomUUID();
  private readonly socks: Record<MainChannel, Zmq.Router | Zmq.Publisher>;
  private readonly queues: Record<MainChannel, SendQueue>;
  /** the control thread, or (where zmq cannot run in a worker) a socket on this thread */
  private control!: ControlThread | { sock: Zmq.Router; queue: SendQueue };
  private heartbeat?: Worker | Zmq.Reply;

  private constructor(private readonly info: ConnectionInfo) {
    const zmq = loadZmq();
    this.signer = new Signer(info.key, info.digest);
    // sendTimeout 0: zeromq completes each send inside send() (these sockets drop rather than block
    // at their high-water mark anyway), so output leaves even while a cell holds the thread.
    this.socks = {
      shell: new zmq.Router({ linger: 0, sendTimeout: 0 }),
      stdin: new zmq.Router({ linger: 0, sendTimeout: 0 }),
      iopub: new zmq.Publisher({ linger: 0, sendTimeout: 0 }),
    };
    const queue = (c: Outgoing, s: Zmq.Router | Zmq.Publisher) => new SendQueue(s, (e) => {
      if (!s.closed) log(`send on ${c} failed: ${(e as Error)?.message ?? e}`);
    });
    this.queues = { shell: queue('shell', this.socks.shell), stdin: queue('stdin', this.socks.stdin), iopub: queue('iopub', this.socks.iopub) };
  }

  /**
   * @param graceMs how long the main thread may stay unresponsive after an interrupt before the
   *   control thread stops the code holding it
   */
  static async bind(info: ConnectionInfo, graceMs: number, shared: SharedState): Promise<KernelSockets> {
    const k = new KernelSockets(info);
    await Promise.all((['shell', 'stdin', 'iopub'] as const).map((c) => k.socks[c].bind(endpoint(info, c))));
    await k.startControl(graceMs, shared);
    await k.startHeartbeat();
    return k;
  }

  private async startControl(graceMs: number, shared: SharedState): Promise<void> {
    const ep = endpoint(this.info, 'control');
    const thread = await ControlThread.start({
      endpoint: ep, key: this.info.key, digest: this.info.digest, session: this.session, graceMs, shared: shared.buffer,
    });
    if (thread instanceof ControlThread) {
      this.control = thread;
      return;
    }
    log(`control thread failed (${thread}); serving control on the main thread: an endless microtask loop cannot be interrupted, and an orphaned kernel notices only while idle`);
    const sock = new (loadZmq().Router)({ linger: 0, sendTimeout: 0 });
    await sock.bind(ep);
    this.control = { sock, queue: new SendQueue(sock, (e) => { if (!sock.closed) log(`send on control failed: ${(e as Error)?.message ?? e}`); }) };
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

  /** Decodes and verifies; forged or malformed messages are logged and dropped. */
  private accept(channel: Incoming, frames: Buffer[], handler: Handler, answered: boolean): void {
    let msg: Message;
    try {
      msg = decode(frames, this.signer);
    } catch (e) {
      if (e instanceof InvalidMessage) return log(`${channel}: ${e.message}`);
      throw e;
    }
    try {
      handler(msg, answered);
    } catch (e) {
      log(`${channel}: handling ${msg.header.msg_type} failed: ${(e as Error).stack ?? e}`);
    }
  }

  /** Calls `handler` for each authentic message on `channel`. */
  listen(channel: Incoming, handler: Handler): void {
    const control = this.control;
    if (channel === 'control' && control instanceof ControlThread) {
      return control.listen((frames, answered) => this.accept('control', frames, handler, answered), (n) => this.notice(n));
    }
    const sock = (channel === 'control' ? (control as { sock: Zmq.Router }).sock : this.socks.shell) as Zmq.Router;
    if (channel === 'control') watchParent(() => this.notice({ kind: 'parent-gone' }));
    void (async () => {
      for await (const frames of sock) this.accept(channel, frames, handler, false);
    })().catch((e) => {
      if (!sock.closed) log(`${channel} socket stopped: ${(e as Error).message}`);
    });
  }

  /** What the control thread reports: a stopped main thread, or Jupyter gone. */
  onNotice: (n: ControlNotice) => void = () => {};

  private notice(n: ControlNotice): void {
    try {
      this.onNotice(n);
    } catch (e) {
      log(`handling ${n.kind} failed: ${(e as Error).stack ?? e}`);
    }
  }

  /**
   * Queues the message on its socket; when nothing waits ahead of it, zmq
   * has it before this returns. Never throws: a message that cannot be
   * encoded or sent is logged and dropped, and later ones still go.
   */
  send(channel: Outgoing, msg: Message<unknown>): void {
    let frames: Buffer[];
    try {
      frames = encode(msg, this.signer);
    } catch (e) {
      return log(`cannot encode ${msg.header.msg_type} for ${channel}: ${(e as Error).message}`);
    }
    if (channel !== 'control') return this.queues[channel].push(frames);
    const control = this.control;
    if (control instanceof ControlThread) control.send(frames);
    else control.queue.push(frames);
  }

  /** Resolves once every queued message has been handed to zmq (or after a limit). */
  async flush(): Promise<void> {
    const control = this.control;
    const all = [...Object.values(this.queues).map((q) => q.drained()), control instanceof ControlThread ? control.flush() : control.queue.drained()];
    await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, FLUSH_LIMIT_MS).unref())]);
  }

  /** Exiting while a worker still holds a zmq socket aborts the process, so they end first. */
  async close(): Promise<void> {
    for (const s of Object.values(this.socks)) s.close();
    const control = this.control;
    if (control instanceof ControlThread) await control.close();
    else control?.sock.close();
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
