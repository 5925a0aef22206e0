/**
 * The main thread's side of the control thread (control-thread.ts): requests
 * come in as verified frames, replies go out through the thread's socket,
 * and the thread's notices (a stopped main thread, Jupyter gone) arrive here.
 */
import { Worker } from 'node:worker_threads';
import type { ControlNotice, ControlSetup, FromControl, ToControl } from './control-messages.js';

export type { ControlNotice } from './control-messages.js';

const asBuffers = (frames: Uint8Array[]) => frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength));

export class ControlThread {
  private onRequest: (frames: Buffer[], answered: boolean) => void = () => {};
  private onNotice: (n: ControlNotice) => void = () => {};
  private readonly flushes: (() => void)[] = [];

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromControl) => {
      if (m.kind === 'ping') this.post({ kind: 'pong' });
      else if (m.kind === 'flushed') this.flushes.shift()?.();
      else if (m.kind === 'request') this.onRequest(asBuffers(m.frames), m.answered);
      else if (m.kind === 'terminated' || m.kind === 'unstoppable' || m.kind === 'parent-gone') this.onNotice(m);
    });
  }

  /** The bound thread, or why it could not start. */
  static async start(setup: ControlSetup): Promise<ControlThread | string> {
    const worker = new Worker(new URL('./control-thread.js', import.meta.url), { workerData: setup });
    const answer = await new Promise<FromControl | Error>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', resolve);
    });
    if (!(answer instanceof Error) && answer.kind === 'bound') {
      worker.unref();
      return new ControlThread(worker);
    }
    await worker.terminate();
    return answer instanceof Error ? answer.message : answer.kind === 'error' ? answer.message : `unexpected ${answer.kind}`;
  }

  listen(onRequest: (frames: Buffer[], answered: boolean) => void, onNotice: (n: ControlNotice) => void): void {
    this.onRequest = onRequest;
    this.onNotice = onNotice;
  }

  send(frames: Buffer[]): void {
    this.post({ kind: 'send', frames });
  }

  /** Resolves once everything sent so far has been handed to zmq. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      this.flushes.push(resolve);
      this.post({ kind: 'flush' });
    });
  }

  private post(m: ToControl): void {
    this.worker.postMessage(m);
  }

  /** Exiting while the thread holds a zmq socket aborts the process, so it ends first. */
  async close(): Promise<void> {
    const exited = new Promise((r) => this.worker.once('exit', r));
    this.post({ kind: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    await this.worker.terminate();
  }
}
