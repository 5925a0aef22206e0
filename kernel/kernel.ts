/**
 * The Jupyter message handlers. Execute requests run one at a time in
 * arrival order; completion, inspection and the like are answered at once,
 * even while a cell runs. Every request is bracketed by busy/idle on iopub.
 */
import { outputsFor, renderValue, textOutput } from '../src/notebook/render.js';
import { closeBrowser } from '../src/notebook/chromium.js';
import type { BackendGuard } from './backend-guard.js';
import { Cell } from './cell.js';
import { interruptedError, TERMINATED_NOTE, thrownToError } from './errors.js';
import { History, type HistoryRequest } from './history.js';
import type { Interrupts } from './interrupt.js';
import type { LateErrors } from './late-errors.js';
import { runInCell } from './output.js';
import type { TsRuntime } from './runtime.js';
import type { Incoming, KernelSockets } from './sockets.js';
import { child, PROTOCOL_VERSION, type Message } from './wire.js';
import { log } from './log.js';
import { realExit } from './exit-guard.js';

interface ExecuteRequest {
  code?: string;
  silent?: boolean;
  store_history?: boolean;
  user_expressions?: Record<string, string>;
  stop_on_error?: boolean;
}

export interface KernelIdentity {
  banner: string;
  version: string;
  tsVersion: string;
}

const DRAIN_LIMIT_MS = 60_000;

/** What the kernel needs of its sockets; the headless runner (run.ts) passes an in-process stand-in. */
export type KernelTransport = Pick<KernelSockets, 'listen' | 'send' | 'flush' | 'close' | 'session'>;

export class Kernel {
  private readonly history = new History();
  private executionCount = 0;
  private queue: Promise<void> = Promise.resolve();
  private arrived = 0;
  /** execute requests that arrived up to this number are aborted (stop_on_error) */
  private abortThrough = 0;

  constructor(
    private readonly sockets: KernelTransport,
    private readonly runtime: TsRuntime,
    private readonly interrupts: Interrupts,
    private readonly identity: KernelIdentity,
    /** shown once, on stderr of the first cell run */
    private startupNotes: string[],
    /** errors from cells that already finished, shown in the running or next cell */
    private readonly late: LateErrors,
    /** GPU errors, a lost device, an aborted wasm module; absent when no library backend was loaded */
    private readonly guard?: BackendGuard,
  ) {}

  private get session(): string {
    return this.sockets.session;
  }

  start(): void {
    this.sockets.listen('shell', (m) => this.onMessage('shell', m, false));
    this.sockets.listen('control', (m, answered) => this.onMessage('control', m, answered));
    this.sockets.send('iopub', child(undefined, 'status', { execution_state: 'starting' }, this.session));
  }

  /**
   * The control thread stopped code that held the main thread. A running
   * cell is detached and says why; otherwise the next cell gets a note.
   */
  stuckCodeStopped(frames: string[]): void {
    if (this.interrupts.terminated()) return;
    this.late.note(`note: an interrupt stopped code that a cell had left running and that held the kernel without yielding (at ${frames.join(' < ')}). Promise callbacks that were queued at that moment, from any cell, were dropped.`);
  }

  stuckCodeUnstoppable(why: string): void {
    this.late.note(`note: an interrupt could not stop the code that held the kernel: ${why}. If it happens again, restart the kernel (files on disk are kept).`);
  }

  readonly publish = (parent: Message, msgType: string, content: Record<string, unknown>): void => {
    this.sockets.send('iopub', child(parent, msgType, content, this.session));
  };

  private reply(channel: Incoming, req: Message, msgType: string, content: Record<string, unknown>): void {
    this.sockets.send(channel, child(req, msgType, content, this.session, req.identities));
  }

  /** @param answered the control thread already replied (interrupt_request) */
  private onMessage(channel: Incoming, msg: Message, answered: boolean): void {
    if (msg.header.msg_type === 'execute_request') {
      const seq = ++this.arrived;
      // Whatever one request does, the queue must move on to the next.
      this.queue = this.queue.then(() => this.bracket(msg, () => this.execute(msg, seq))).catch((e) => log(`execute queue: ${(e as Error)?.stack ?? e}`));
      return;
    }
    void this.bracket(msg, () => this.handle(channel, msg, answered)).catch((e) => log(`${msg.header.msg_type}: ${(e as Error)?.stack ?? e}`));
  }

  private async bracket(msg: Message, body: () => void | Promise<void>): Promise<void> {
    this.publish(msg, 'status', { execution_state: 'busy' });
    try {
      await body();
    } catch (e) {
      log(`${msg.header.msg_type} failed: ${(e as Error).stack ?? e}`);
    } finally {
      this.publish(msg, 'status', { execution_state: 'idle' });
    }
  }

  private handle(channel: Incoming, msg: Message, answered: boolean): void | Promise<void> {
    const c = msg.content as Record<string, unknown>;
    switch (msg.header.msg_type) {
      case 'kernel_info_request':
        return this.reply(channel, msg, 'kernel_info_reply', this.kernelInfo());
      case 'complete_request': {
        const code = String(c.code ?? '');
        const r = this.runtime.complete(code, typeof c.cursor_pos === 'number' ? c.cursor_pos : [...code].length);
        return this.reply(channel, msg, 'complete_reply', { status: 'ok', ...r, metadata: {} });
      }
      case 'inspect_request': {
        const code = String(c.code ?? '');
        const text = this.runtime.inspect(code, typeof c.cursor_pos === 'number' ? c.cursor_pos : [...code].length);
        return this.reply(channel, msg, 'inspect_reply', { status: 'ok', found: text !== undefined, data: text ? { 'text/plain': text } : {}, metadata: {} });
      }
      case 'is_complete_request':
        return this.reply(channel, msg, 'is_complete_reply', this.runtime.isComplete(String(c.code ?? '')));
      case 'history_request':
        try {
          return this.reply(channel, msg, 'history_reply', { status: 'ok', history: this.history.query(c as HistoryRequest) });
        } catch (e) {
          return this.reply(channel, msg, 'history_reply', { status: 'error', ...thrownToError(e) });
        }
      case 'comm_info_request':
        return this.reply(channel, msg, 'comm_info_reply', { status: 'ok', comms: {} });
      case 'comm_open':
        // No comm targets exist (no widgets); closing tells the front-end right away.
        return this.publish(msg, 'comm_close', { comm_id: c.comm_id, data: {} });
      case 'comm_msg':
      case 'comm_close':
        return;
      case 'interrupt_request':
        this.interrupts.interrupt();
        // The control thread has answered it already (and broken synchronous cell code with SIGINT).
        if (answered) return;
        return this.reply(channel, msg, 'interrupt_reply', { status: 'ok' });
      case 'shutdown_request':
        return this.shutdown(channel, msg, c.restart === true, answered);
      default:
        log(`ignoring unsupported ${msg.header.msg_type} on ${channel}`);
    }
  }

  private kernelInfo(): Record<string, unknown> {
    return {
      status: 'ok',
      protocol_version: PROTOCOL_VERSION,
      implementation: 'sharelora',
      implementation_version: this.identity.version,
      language_info: {
        name: 'typescript',
        version: this.identity.tsVersion,
        mimetype: 'text/typescript',
        file_extension: '.ts',
        pygments_lexer: 'typescript',
        // Lab reads `mode`; classic Notebook needs name+typescript (as tslab found).
        codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true },
      },
      banner: this.identity.banner,
      help_links: [
        { text: 'TypeScript handbook', url: 'https://www.typescriptlang.org/docs/handbook/' },
        { text: 'TensorFlow.js API', url: 'https://js.tensorflow.org/api/latest/' },
        { text: 'Arquero API', url: 'https://idl.uw.edu/arquero/api/' },
      ],
      debugger: false,
    };
  }

  private async execute(req: Message, seq: number): Promise<void> {
    const c = req.content as ExecuteRequest;
    const code = typeof c.code === 'string' ? c.code : '';
    if (seq <= this.abortThrough) {
      return this.reply('shell', req, 'execute_reply', { status: 'aborted', execution_count: this.executionCount });
    }
    const silent = c.silent === true;
    const store = !silent && c.store_history !== false;
    if (store) this.executionCount++;
    const count = this.executionCount;
    if (store) this.history.add(count, code);
    if (!silent) this.publish(req, 'execute_input', { code, execution_count: count });

    const cell = new Cell(req, count, this.publish, silent);
    if (!silent) this.late.started(cell);
    try {
      await this.run(req, c, cell, code, count, silent, store);
    } finally {
      this.late.finished(cell);
    }
  }

  private async run(req: Message, c: ExecuteRequest, cell: Cell, code: string, count: number, silent: boolean, store: boolean): Promise<void> {
    await runInCell(cell, () => this.interrupts.beforeCell((t) => cell.stream('stderr', t)));
    if (this.startupNotes.length && !silent) {
      cell.stream('stderr', this.startupNotes.map((n) => `note: ${n}\n`).join(''));
      this.startupNotes = [];
    }

    const backendNotes = await this.guard?.beforeCell(!silent) ?? [];
    if (backendNotes.length) cell.stream('stderr', backendNotes.map((n) => `${n}\n`).join(''));

    this.interrupts.begin(cell);
    let outcome = await runInCell(cell, () => this.runtime.execute(code));
    const { detached, terminated } = this.interrupts.end();
    if (terminated && !outcome.ok && outcome.error?.ename === 'Interrupted') outcome = { ok: false, error: interruptedError(TERMINATED_NOTE) };
    // A dead device or module makes the cell's values garbage: its error replaces them.
    const backendFailure = await this.guard?.afterCell(outcome);
    if (backendFailure) outcome = { ok: false, error: backendFailure, warnings: outcome.warnings };
    if (outcome.warnings) cell.stream('stderr', `${outcome.warnings}\n`);
    if (outcome.result && !silent) {
      const value = outcome.result.value;
      const outputs = runInCell(cell, () => outputsFor(value)).catch((e) => [textOutput(value), textOutput(`(rich display failed: ${(e as Error).message})`)]);
      cell.result(outputs);
      if (store) void outputs.then((o) => this.history.setOutput(count, String(o[o.length - 1]?.data['text/plain'] ?? '')));
    }
    // A detached cell's code keeps running: stop taking its output now, before waiting for the queue.
    if (detached) cell.state = 'detached';
    const userExpressions = await this.userExpressions(req, c.user_expressions);
    const limit = new Promise((r) => setTimeout(r, DRAIN_LIMIT_MS).unref());
    await Promise.race([cell.drain(), limit]);
    // Node reports a rejection the cell left unhandled only after the promise callbacks that follow: one more turn lets it land here.
    await new Promise((r) => setImmediate(r));
    await Promise.race([cell.drain(), limit]);
    // Errors raised from here on would be published after the reply, where front-ends drop them: the next cell shows them.
    this.late.finished(cell);
    if (!detached) cell.state = 'done';

    if (!outcome.ok) {
      const err = outcome.error!;
      cell.error({ ...err });
      if (c.stop_on_error !== false) this.abortThrough = this.arrived;
      return this.reply('shell', req, 'execute_reply', { status: 'error', execution_count: count, ...err, user_expressions: userExpressions, payload: [] });
    }
    this.reply('shell', req, 'execute_reply', { status: 'ok', execution_count: count, payload: [], user_expressions: userExpressions });
  }

  private async userExpressions(req: Message, exprs: Record<string, string> | undefined): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, expr] of Object.entries(exprs ?? {})) {
      const cell = new Cell(req, this.executionCount, this.publish, true);
      const r = await runInCell(cell, () => this.runtime.execute(String(expr)));
      if (!r.ok) out[name] = { status: 'error', ...r.error };
      else {
        const rendered = r.result ? await renderValue(r.result.value, { png: false }) : textOutput(undefined);
        out[name] = { status: 'ok', data: rendered.data, metadata: rendered.metadata };
      }
    }
    return out;
  }

  /** @param answered the control thread replied already (it does on the control channel, even while a cell holds this thread) */
  private async shutdown(channel: Incoming, msg: Message, restart: boolean, answered: boolean): Promise<void> {
    if (!answered) this.reply(channel, msg, 'shutdown_reply', { status: 'ok', restart });
    this.publish(msg, 'status', { execution_state: 'idle' });
    await this.sockets.flush();
    await this.exit(0);
  }

  /** Ends the process cleanly: worker threads release their zmq sockets first (else exit aborts). */
  async exit(code: number): Promise<never> {
    await closeBrowser().catch(() => {});
    this.runtime.close();
    await this.sockets.close();
    return realExit(code);
  }
}
