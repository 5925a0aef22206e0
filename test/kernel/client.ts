/**
 * A small Jupyter client for the kernel tests: starts the real kernel on a
 * fresh connection file and speaks the wire protocol over zeromq, which lets
 * tests also send what a normal client never would (forged signatures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as Zmq from 'zeromq';
import { loadZmq } from '../../kernel/zmq.js';
import { decode, encode, Signer, type Message } from '../../kernel/wire.js';
import { KERNEL_MAIN } from './env.js';
import { freePort } from '../net.js';


export interface Exchange {
  reply: Message;
  /** iopub messages for the request, between busy and idle, without status */
  outputs: Message[];
}

export interface StartOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

/** the kernel exited because a port picked for it was taken before it could bind it */
class PortTaken extends Error {}

export class TestKernel {
  readonly log: string[] = [];
  private readonly pendingReplies = new Map<string, (m: Message) => void>();
  private readonly iopub = new Map<string, Message[]>();
  private readonly idleWaiters = new Map<string, () => void>();
  private exited?: Promise<number | null>;
  /** zeromq refuses a second send on a socket while one is pending, so sends take turns */
  private readonly sending: Record<'shell' | 'control', Promise<unknown>> = { shell: Promise.resolve(), control: Promise.resolve() };

  private constructor(
    readonly proc: ChildProcess,
    readonly ports: Record<'shell' | 'iopub' | 'stdin' | 'control' | 'hb', number>,
    readonly signer: Signer,
    private readonly connectionFile: string,
    private readonly socks: { shell: Zmq.Dealer; control: Zmq.Dealer; iopub: Zmq.Subscriber },
  ) {
    this.exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  }

  static async start(opts: StartOptions): Promise<TestKernel> {
    // The ports are free when picked but not reserved: until the kernel binds them, another process, or an
    // ephemeral port of this client's own reconnecting sockets, can take one. Then start again on new ones.
    for (let attempt = 1; ; attempt++) {
      try {
        return await TestKernel.startOnce(opts);
      } catch (e) {
        if (attempt >= 3 || !(e instanceof PortTaken)) throw e;
      }
    }
  }

  private static async startOnce(opts: StartOptions): Promise<TestKernel> {
    const ports = {
      shell: await freePort(), iopub: await freePort(), stdin: await freePort(), control: await freePort(), hb: await freePort(),
    };
    const key = randomBytes(16).toString('hex');
    const file = join(opts.cwd, `kernel-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify({
      transport: 'tcp', ip: '127.0.0.1', key, signature_scheme: 'hmac-sha256',
      shell_port: ports.shell, iopub_port: ports.iopub, stdin_port: ports.stdin, control_port: ports.control, hb_port: ports.hb,
    }));
    const proc = spawn(process.execPath, [KERNEL_MAIN, file], {
      cwd: opts.cwd, env: { ...process.env, SHARELORA_BACKEND: 'cpu', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, as jupyter_client starts kernels: interrupts go to the whole group.
      detached: true,
    });
    const zmq = loadZmq();
    const socks = {
      shell: new zmq.Dealer({ linger: 0, routingId: `shell-${randomUUID()}` }),
      control: new zmq.Dealer({ linger: 0, routingId: `control-${randomUUID()}` }),
      iopub: new zmq.Subscriber({ linger: 0 }),
    };
    socks.shell.connect(`tcp://127.0.0.1:${ports.shell}`);
    socks.control.connect(`tcp://127.0.0.1:${ports.control}`);
    socks.iopub.connect(`tcp://127.0.0.1:${ports.iopub}`);
    socks.iopub.subscribe();
    const k = new TestKernel(proc, ports, new Signer(key, 'sha256'), file, socks);
    proc.stdout!.on('data', (d) => k.log.push(String(d)));
    proc.stderr!.on('data', (d) => k.log.push(String(d)));
    k.pump(socks.shell);
    k.pump(socks.control);
    k.pumpIopub();
    // Jupyter clients poll kernel_info until the kernel answers; the first may be sent before binding.
    for (let i = 0; ; i++) {
      try {
        await k.request('shell', 'kernel_info_request', {}, 2000);
        break;
      } catch (e) {
        if (i > 90 || k.proc.exitCode !== null) {
          // open sockets would keep the test process alive after the failure is reported
          for (const sock of Object.values(socks)) sock.close();
          if (k.proc.exitCode === null) k.proc.kill('SIGKILL');
          if (/Address already in use/.test(k.log.join(''))) throw new PortTaken(k.log.join(''));
          throw new Error(`kernel did not start: ${(e as Error).message}\n${k.log.join('')}`);
        }
      }
    }
    return k;
  }

  private pump(sock: Zmq.Dealer): void {
    void (async () => {
      for await (const frames of sock) {
        const msg = decode(frames, this.signer);
        const id = msg.parent_header.msg_id;
        if (id) this.pendingReplies.get(id)?.(msg);
      }
    })().catch(() => {});
  }

  private pumpIopub(): void {
    void (async () => {
      for await (const frames of this.socks.iopub) {
        const msg = decode(frames, this.signer);
        const id = msg.parent_header.msg_id;
        if (!id) continue;
        if (!this.iopub.has(id)) this.iopub.set(id, []);
        this.iopub.get(id)!.push(msg);
        if (msg.header.msg_type === 'status' && (msg.content as { execution_state?: string }).execution_state === 'idle') this.idleWaiters.get(id)?.();
      }
    })().catch(() => {});
  }

  message(msgType: string, content: Record<string, unknown>): Message {
    return {
      identities: [],
      header: { msg_id: randomUUID(), msg_type: msgType, session: 'test-session', username: 'test', date: new Date().toISOString(), version: '5.3' },
      parent_header: {}, metadata: {}, content, buffers: [],
    };
  }

  /** Sends a request and waits for its reply and its idle status. */
  request(channel: 'shell' | 'control', msgType: string, content: Record<string, unknown>, timeoutMs = 60_000, signer = this.signer): Promise<Exchange> {
    return this.begin(channel, this.message(msgType, content), timeoutMs, signer).done;
  }

  /**
   * Sends `msg` now; `replied` settles with its reply alone, `done` with its reply and outputs once it is idle,
   * while outputsOf(msg_id) shows them live.
   */
  begin(channel: 'shell' | 'control', msg: Message, timeoutMs = 60_000, signer = this.signer): { msgId: string; replied: Promise<Message>; done: Promise<Exchange> } {
    const id = msg.header.msg_id;
    const reply = new Promise<Message>((resolve) => this.pendingReplies.set(id, resolve));
    const idle = new Promise<void>((resolve) => this.idleWaiters.set(id, resolve));
    const done = (async () => {
      await this.sendFrames(channel, encode(msg, signer));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no reply to ${msg.header.msg_type} within ${timeoutMs} ms`)), timeoutMs); });
      try {
        const [r] = await Promise.race([Promise.all([reply, idle]), timeout]);
        return { reply: r, outputs: this.outputsOf(id).filter((m) => m.header.msg_type !== 'status') };
      } finally {
        clearTimeout(timer);
        this.pendingReplies.delete(id);
        this.idleWaiters.delete(id);
      }
    })();
    return { msgId: id, replied: reply, done };
  }

  executeMessage(code: string, extra: Record<string, unknown> = {}): Message {
    return this.message('execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true, ...extra });
  }

  execute(code: string, extra: Record<string, unknown> = {}, timeoutMs?: number): Promise<Exchange> {
    return this.begin('shell', this.executeMessage(code, extra), timeoutMs).done;
  }

  /** Sends without waiting (for requests that must queue behind a running cell). */
  async send(msg: Message, channel: 'shell' | 'control' = 'shell'): Promise<void> {
    await this.sendFrames(channel, encode(msg, this.signer));
  }

  private sendFrames(channel: 'shell' | 'control', frames: Buffer[]): Promise<void> {
    const sent = this.sending[channel].then(() => this.socks[channel].send(frames));
    this.sending[channel] = sent.catch(() => {});
    return sent;
  }

  /** All iopub messages seen so far whose parent is `msgId`. */
  outputsOf(msgId: string): Message[] {
    return this.iopub.get(msgId) ?? [];
  }

  /** Like jupyter_client's interrupt: the signal goes to the kernel's process group (its children too). */
  signal(sig: NodeJS.Signals = 'SIGINT'): void {
    process.kill(-this.proc.pid!, sig);
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async shutdown(): Promise<number | null> {
    if (this.alive()) {
      await this.request('control', 'shutdown_request', { restart: false }, 10_000).catch(() => this.proc.kill('SIGKILL'));
    }
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
    if (code === 'timeout') this.proc.kill('SIGKILL');
    for (const s of Object.values(this.socks)) s.close();
    rmSync(this.connectionFile, { force: true });
    return code === 'timeout' ? null : code!;
  }
}

/** Text of all stream messages of a given name. */
export function streamText(outputs: Message[], name: 'stdout' | 'stderr'): string {
  return outputs.filter((m) => m.header.msg_type === 'stream' && (m.content as { name: string }).name === name)
    .map((m) => (m.content as { text: string }).text).join('');
}

export function ofType(outputs: Message[], msgType: string): Message[] {
  return outputs.filter((m) => m.header.msg_type === msgType);
}
