/**
 * `sharelora run`: executes a notebook without Jupyter. The kernel itself
 * (kernel.ts, with the session main.ts starts) runs in this process behind an
 * in-process transport, and this file plays nbclient's part: it sends each
 * code cell as an execute_request and turns the messages that come back into
 * nbformat outputs by nbclient's rules (display ids updated in place,
 * clear_output with wait, the execution count from the reply) and
 * nbconvert's (adjacent streams merged, carriage returns applied). The
 * outputs are therefore those Jupyter would save, produced by the same code;
 * by default they are then saved in the portable form portable.ts describes.
 */
import { resolve, dirname, basename, join } from 'node:path';
import { closeSync, existsSync, openSync, realpathSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { flags } from '../src/backend/flags.js';
import { checkOptions, optionKeys } from '../src/util/options.js';
import { Kernel, type KernelTransport } from './kernel.js';
import { child, type Message } from './wire.js';
import type { Handler, Incoming } from './sockets.js';
import { startSession } from './session.js';
import { DISPLAY_NAME, KERNEL_NAME } from './kernelspec.js';
import { injectParameters } from './parameters.js';
import { addCellIds, joinSource, readNotebook, writeNotebook, type CodeCell, type Notebook, type Output } from './notebook-file.js';
import { makePortable } from './portable.js';
import { renderFigureImage } from '../src/notebook/chromium.js';
import type { FigureJSON } from '../src/notebook/figure.js';

/** The terminal's stderr, taken before the session redirects process.stderr into cells. */
const terminal = process.stderr.write.bind(process.stderr);

export interface RunOptions {
  /** the notebook to execute */
  input: string;
  /** where to write the executed notebook; give this or `inPlace` */
  output?: string;
  /**
   * write the executed notebook over the input (its saved outputs are replaced). A run that
   * fails leaves the input as it was and writes `<name>.failed.ipynb` beside it instead.
   */
  inPlace?: boolean;
  /** papermill-style parameters, injected after the cell tagged `parameters` */
  parameters?: Record<string, unknown>;
  /** the backend the session starts with (default SHARELORA_BACKEND, else auto) */
  backend?: string;
  /** seconds a cell may run before it is interrupted (default: no limit) */
  timeoutS?: number;
  /** one line per cell on the terminal, and a line while a long cell runs (default true) */
  progress?: boolean;
  /** seconds between the lines a running cell prints (default 30) */
  progressEveryS?: number;
  /**
   * save the outputs exactly as Jupyter would (plotly.js, figure HTML, live training plots)
   * instead of the portable form (portable.ts); default false
   */
  verbatim?: boolean;
}

export interface FailedCell {
  /** index in the written notebook's cells (0-based, markdown cells counted) */
  index: number;
  firstLine: string;
  /** interrupted because it ran past `timeoutS` */
  timedOut: boolean;
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface RunResult {
  /** the file written: the output, the input (in place), or `<name>.failed.ipynb` beside an input run in place that failed */
  output: string;
  /** the run was in place (`inPlace`, or an output that is the input) */
  inPlace: boolean;
  /** code cells executed, the failing one included */
  executed: number;
  failed?: FailedCell;
  seconds: number;
}

export const RUN_OPTIONS = optionKeys<RunOptions>()(['input', 'output', 'inPlace', 'parameters', 'backend', 'timeoutS', 'progress', 'progressEveryS', 'verbatim']);

/** The kernel's sockets, in memory: requests go straight to its handlers, replies to ours. */
class InProcessTransport implements KernelTransport {
  private readonly handlers = new Map<Incoming, Handler>();
  readonly session = `sharelora-run-${process.pid}`;
  onMessage: (channel: string, msg: Message) => void = () => {};

  listen(channel: Incoming, handler: Handler): void {
    this.handlers.set(channel, handler);
  }

  send(channel: 'shell' | 'control' | 'iopub' | 'stdin', msg: Message<unknown>): void {
    // As on the wire: later changes to the objects a cell displayed do not reach the saved output,
    // and values JSON cannot carry (NaN, undefined) arrive as Jupyter would receive them.
    this.onMessage(channel, JSON.parse(JSON.stringify(msg, (k, v) => (k === 'identities' || k === 'buffers' ? [] : v))) as Message);
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  request(channel: Incoming, msgType: string, content: Record<string, unknown>): Message {
    const msg = child(undefined, msgType, content, this.session) as Message;
    msg.header.username = 'sharelora-run';
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`the kernel does not listen on ${channel}`);
    handler(msg, false);
    return msg;
  }
}

/**
 * The --timeout clock, on its own thread: a timer on the main thread cannot
 * fire while a cell is stuck in synchronous code. It sends the process a real
 * SIGINT, as Jupyter's interrupt does: tslab runs cells with breakOnSigint, so
 * that stops synchronous code, and otherwise the session's SIGINT handler asks
 * a training loop to stop and detaches the cell after the grace period. A
 * second SIGINT 10 s later detaches a cell that ignored the first.
 */
class Watchdog {
  private readonly worker: Worker;

  constructor(onFire: (index: number) => void) {
    this.worker = new Worker(`
      const { parentPort } = require('node:worker_threads');
      let timers = [];
      parentPort.on('message', (m) => {
        for (const t of timers) clearTimeout(t);
        timers = [];
        if (!m.arm) return;
        timers.push(setTimeout(() => { parentPort.postMessage(m.index); process.kill(process.pid, 'SIGINT'); }, m.ms));
        timers.push(setTimeout(() => process.kill(process.pid, 'SIGINT'), m.ms + 10000));
      });`, { eval: true });
    this.worker.on('message', onFire);
    this.worker.unref();
  }

  arm(ms: number, index: number): void {
    this.worker.postMessage({ arm: true, ms, index });
  }

  disarm(): void {
    this.worker.postMessage({ arm: false });
  }

  close(): void {
    void this.worker.terminate();
  }
}

const CR_OVERWRITE = /.*\r(?=[^\n])/g;

/** nbconvert's coalesce_streams: adjacent writes to one stream become one output; `\r` overwrites the line. */
export function coalesceStreams(outputs: Output[]): Output[] {
  const out: Output[] = [];
  for (const o of outputs) {
    const last = out[out.length - 1];
    if (o.output_type === 'stream' && last?.output_type === 'stream' && last.name === o.name) {
      last.text = joinSource(last.text) + joinSource(o.text);
    } else {
      out.push(o.output_type === 'stream' ? { ...o, text: joinSource(o.text) } : o);
    }
  }
  for (const o of out) if (o.output_type === 'stream' && (o.text as string).includes('\r')) o.text = (o.text as string).replace(CR_OVERWRITE, '');
  return out;
}

/** nbclient's bookkeeping for one notebook: where each display id's outputs are, and pending waits. */
class OutputCollector {
  private readonly displays = new Map<string, Map<number, number[]>>();
  private clearOnNext = false;

  constructor(private readonly nb: Notebook) {}

  begin(): void {
    this.clearOnNext = false;
  }

  /** One iopub message for the code cell at `index`. */
  handle(index: number, msg: Message): void {
    const cell = this.nb.cells[index] as CodeCell;
    const type = msg.header.msg_type;
    const c = msg.content as Record<string, unknown>;
    const displayId = (c.transient as { display_id?: string } | undefined)?.display_id;
    if (displayId && (type === 'display_data' || type === 'update_display_data' || type === 'execute_result')) {
      for (const [cellIndex, outputIndices] of this.displays.get(displayId) ?? []) {
        const outs = (this.nb.cells[cellIndex] as CodeCell).outputs;
        for (const i of outputIndices) Object.assign(outs[i]!, { data: c.data, metadata: c.metadata });
      }
    }
    switch (type) {
      case 'clear_output':
        if (c.wait) this.clearOnNext = true;
        else this.clear(index);
        return;
      case 'stream':
        return this.add(index, { output_type: 'stream', name: c.name as 'stdout' | 'stderr', text: String(c.text) }, undefined);
      case 'display_data':
        return this.add(index, { output_type: 'display_data', data: c.data as Record<string, unknown>, metadata: (c.metadata ?? {}) as Record<string, unknown> }, displayId);
      case 'execute_result':
        return this.add(index, {
          output_type: 'execute_result', data: c.data as Record<string, unknown>, metadata: (c.metadata ?? {}) as Record<string, unknown>,
          execution_count: (c.execution_count as number | null) ?? cell.execution_count,
        }, displayId);
      case 'error':
        return this.add(index, { output_type: 'error', ename: String(c.ename), evalue: String(c.evalue), traceback: (c.traceback as string[]) ?? [] }, undefined);
      default:
        // status, execute_input, update_display_data (handled above), comm_*: no output of their own
    }
  }

  private add(index: number, out: Output, displayId: string | undefined): void {
    const outs = (this.nb.cells[index] as CodeCell).outputs;
    if (this.clearOnNext) {
      this.clear(index);
      this.clearOnNext = false;
    }
    if (displayId) {
      const byCell = this.displays.get(displayId) ?? new Map<number, number[]>();
      this.displays.set(displayId, byCell);
      byCell.set(index, [...(byCell.get(index) ?? []), outs.length]);
    }
    outs.push(out);
  }

  private clear(index: number): void {
    (this.nb.cells[index] as CodeCell).outputs.length = 0;
    for (const byCell of this.displays.values()) if (byCell.has(index)) byCell.set(index, []);
  }
}

export function firstLine(source: string): string {
  const line = source.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

function checkKernel(nb: Notebook, file: string): void {
  const spec = nb.metadata.kernelspec;
  if (spec && spec.name !== KERNEL_NAME && spec.language !== 'typescript') {
    throw new Error(`${file} is a notebook for the "${spec.name}" kernel (${spec.language ?? 'unknown language'}); sharelora run executes TypeScript notebooks`);
  }
  nb.metadata.kernelspec = { display_name: DISPLAY_NAME, language: 'typescript', name: KERNEL_NAME };
}

/** The output cannot be written (checked before any cell runs). */
export class NotebookOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotebookOutputError';
  }
}

/** The same file, through symlinks and `..`; a path that does not exist yet is not the input. */
function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * Fails now, before any cell runs, if `output` cannot be written: a folder or
 * device in its place, a missing or read-only folder, /proc. It creates (and
 * removes) a file beside it, as the final write will.
 */
function checkWritable(output: string, given: string): void {
  let st;
  try {
    st = statSync(output);
  } catch {
    // does not exist yet: the folder decides
  }
  if (st && !st.isFile()) throw new NotebookOutputError(`${given}: ${st.isDirectory() ? 'is a folder' : 'is not a regular file'}; expected a .ipynb file to write`);
  const probe = join(dirname(output), `.${basename(output)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT' && !existsSync(dirname(output));
    throw new NotebookOutputError(`${given}: cannot write there (${missing ? 'its folder does not exist' : (e as Error).message})`);
  }
  rmSync(probe, { force: true });
}

/** `x.ipynb` → `x.failed.ipynb`, beside it: where a failed in-place run goes, leaving the input as it was. */
export function failedPath(input: string): string {
  return join(dirname(input), `${basename(input).replace(/\.ipynb$/, '')}.failed.ipynb`);
}

/**
 * Executes every code cell of `opts.input` in order, stopping at the first
 * error, and writes the notebook (outputs so far, error included) to
 * `opts.output`, or over the input with `inPlace` (a failed in-place run
 * leaves the input untouched and writes `<name>.failed.ipynb`). Everything
 * that can be checked is checked before a cell runs: the options, the
 * notebook's shape, the parameters, that the output can be written. Starts
 * the kernel session in this process: call once per process.
 */
export async function runNotebook(opts: RunOptions): Promise<RunResult> {
  checkOptions('runNotebook', opts, RUN_OPTIONS);
  if (opts.timeoutS !== undefined && !(opts.timeoutS > 0 && opts.timeoutS < Infinity)) throw new RangeError(`runNotebook: timeoutS must be a positive number of seconds; got ${opts.timeoutS}`);
  if (opts.progressEveryS !== undefined && !(opts.progressEveryS > 0 && opts.progressEveryS < Infinity)) throw new RangeError(`runNotebook: progressEveryS must be a positive number of seconds; got ${opts.progressEveryS}`);
  if (typeof opts.input !== 'string' || opts.input === '') throw new TypeError(`runNotebook: input must be a notebook file name; got ${String(opts.input)}`);
  if (opts.output !== undefined && opts.inPlace) throw new TypeError('runNotebook: give output or inPlace, not both');
  if (opts.output === undefined && !opts.inPlace) {
    throw new TypeError(`runNotebook: no output: give output (a file) or inPlace: true to replace ${opts.input}'s saved outputs`);
  }
  const t0 = performance.now();
  const input = resolve(opts.input);
  const inPlace = opts.inPlace === true || sameFile(input, resolve(opts.output!));
  const output = inPlace ? input : resolve(opts.output!);
  const say = (s: string) => { if (opts.progress !== false) terminal(`${s}\n`); };

  const nb = readNotebook(input);
  checkKernel(nb, opts.input);
  injectParameters(nb, opts.parameters ?? {});
  checkWritable(output, opts.output ?? opts.input);
  if (inPlace) checkWritable(failedPath(input), failedPath(opts.input));
  addCellIds(nb);
  // Like papermill: outputs of an earlier run never sit under this run's.
  for (const c of nb.cells) {
    if (c.cell_type !== 'code') continue;
    c.outputs = [];
    c.execution_count = null;
    delete c.metadata.execution;
  }
  const earlier = nb.metadata.sharelora;
  nb.metadata.sharelora = { ...(typeof earlier === 'object' && earlier !== null && !Array.isArray(earlier) ? earlier : {}), run: { parameters: opts.parameters ?? {} } };

  // Jupyter starts a kernel in the notebook's folder; cells open files relative to it.
  const cwd = dirname(input);
  process.chdir(cwd);
  // As SHARELORA_BACKEND does for the kernel: the preload and a bare useBackend() in a cell both take it.
  if (opts.backend) process.env.SHARELORA_BACKEND = opts.backend;
  const backendName = flags.backend;
  const { runtime, interrupts, identity, notes, guard, late, backend } = await startSession(cwd, backendName);
  // The kernel falls back to cpu and says so in the first cell; a run asked for a backend
  // (a GPU run, hours long on cpu) must not quietly start on another.
  if (backendName !== 'auto' && backend?.name !== backendName) {
    throw new Error(`the ${backendName} backend did not start${notes.length ? `: ${notes.join('; ')}` : ''}`);
  }
  const transport = new InProcessTransport();
  const kernel = new Kernel(transport, runtime, interrupts, identity, notes, late, guard);
  const collector = new OutputCollector(nb);

  type Waiter = { msgId: string; index: number; reply?: Message; idle: boolean; done: () => void };
  let waiting: Waiter | undefined;
  /** the running cell's latest line of output (a progress bar's text, a log line), for the progress lines */
  let latest: string | undefined;
  let kernelInfo: ((m: Message) => void) | undefined;
  transport.onMessage = (channel, msg) => {
    const parent = msg.parent_header.msg_id;
    if (channel === 'shell' && msg.header.msg_type === 'kernel_info_reply') return kernelInfo?.(msg);
    const w = waiting;
    if (!w || parent !== w.msgId) return; // stray output of a detached cell, or a status of another request
    const timing = ((nb.cells[w.index] as CodeCell).metadata.execution ??= {}) as Record<string, string>;
    if (channel === 'shell' && msg.header.msg_type === 'execute_reply') {
      w.reply = msg;
      timing['shell.execute_reply'] = msg.header.date;
    } else if (channel === 'iopub') {
      const type = msg.header.msg_type;
      const state = (msg.content as { execution_state?: string }).execution_state;
      if (type === 'status' && state === 'busy') timing['iopub.status.busy'] = msg.header.date;
      if (type === 'execute_input') timing['iopub.execute_input'] = msg.header.date;
      if (type === 'status' && state === 'idle') {
        timing['iopub.status.idle'] = msg.header.date;
        w.idle = true;
      } else {
        collector.handle(w.index, msg);
        latest = lastLine(msg) ?? latest;
      }
    }
    if (w.reply && w.idle) w.done();
  };
  kernel.start();

  const info = await new Promise<Message>((r) => { kernelInfo = r; transport.request('shell', 'kernel_info_request', {}); });
  nb.metadata.language_info = (info.content as { language_info: unknown }).language_info;

  // The session's SIGINT handler interrupts a running cell; three in one cell (say, Ctrl-C held
  // while the run is between cells or starting) end the run without writing the notebook.
  let sigints = 0;
  process.on('SIGINT', () => {
    if (++sigints < 3) return;
    terminal('sharelora run: interrupted three times; stopping without writing the notebook\n');
    process.exit(130);
  });
  const watchdog = new Watchdog((index) => say(`  cell ${index} ran past its ${opts.timeoutS} s limit: interrupting`));
  const total = nb.cells.filter((c) => c.cell_type === 'code' && joinSource(c.source).trim() !== '').length;
  let executed = 0;
  let failed: FailedCell | undefined;
  for (const [index, cell] of nb.cells.entries()) {
    const code = joinSource(cell.source);
    // nbclient skips empty code cells too: no request, no execution count.
    if (cell.cell_type !== 'code' || code.trim() === '') continue;
    executed++;
    collector.begin();
    sigints = 0;
    latest = undefined;
    const started = performance.now();
    // A long cell (a training run) says it is alive, with its latest output, instead of minutes of silence.
    const ticker = setInterval(() => {
      say(`  cell ${index}: running for ${((performance.now() - started) / 1000).toFixed(0)} s${latest ? `: ${latest}` : ''}`);
    }, (opts.progressEveryS ?? 30) * 1000);
    ticker.unref();
    const reply = await new Promise<Message>((resolveReply) => {
      const w: Waiter = { msgId: '', index, idle: false, done: () => resolveReply(w.reply!) };
      waiting = w;
      w.msgId = transport.request('shell', 'execute_request', {
        code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true,
      }).header.msg_id;
      if (opts.timeoutS) watchdog.arm(opts.timeoutS * 1000, index);
    });
    watchdog.disarm();
    clearInterval(ticker);
    const timedOut = opts.timeoutS !== undefined && performance.now() - started >= opts.timeoutS * 1000;
    waiting = undefined;
    (cell as CodeCell).execution_count = (reply.content as { execution_count?: number }).execution_count ?? executed;
    (cell as CodeCell).outputs = coalesceStreams((cell as CodeCell).outputs);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const status = (reply.content as { status?: string }).status;
    if (status !== 'ok') {
      const c = reply.content as { ename?: string; evalue?: string; traceback?: string[] };
      failed = { index, firstLine: firstLine(code), timedOut, ename: c.ename ?? status ?? 'Error', evalue: c.evalue ?? '', traceback: c.traceback ?? [] };
      say(`[${executed}/${total}] cell ${index} failed after ${seconds} s: ${failed.ename}`);
      break;
    }
    say(`[${executed}/${total}] cell ${index} ${seconds} s`);
  }

  watchdog.close();
  if (!opts.verbatim) {
    const report = await makePortable(nb, {
      renderPng: async (fig) => {
        // The switch that keeps the kernel from rendering PNGs (CI's smoke runs) applies here too.
        if (!flags.plotPng) throw new Error('SHARELORA_PLOT_PNG=0');
        return renderFigureImage(fig as FigureJSON, { format: 'png' });
      },
    });
    if (report.htmlKept) say(`note: ${report.htmlKept} figure(s) saved without a PNG (${report.pngError}); they keep their HTML and plotly.js`);
  }
  // A failed run in place would replace every later cell's saved outputs with nothing.
  const written = inPlace && failed ? failedPath(input) : output;
  writeNotebook(written, nb);
  return { output: written, inPlace, executed, failed, seconds: (performance.now() - t0) / 1000 };
}

/** The last non-empty line of a stream or display message's text, cut to fit a terminal line. */
function lastLine(msg: Message): string | undefined {
  const type = msg.header.msg_type;
  const c = msg.content as { text?: unknown; data?: Record<string, unknown> };
  // a figure's text says nothing about progress; a progress bar's or a log line's does
  const shown = type === 'display_data' || type === 'update_display_data' || type === 'execute_result';
  const text = type === 'stream' ? c.text : shown && !c.data?.['application/vnd.plotly.v1+json'] ? c.data?.['text/plain'] : undefined;
  if (typeof text !== 'string') return undefined;
  const line = text.split(/[\r\n]/).map((l) => l.trim()).filter(Boolean).pop();
  return line && (line.length > 100 ? `${line.slice(0, 99)}…` : line);
}
