/**
 * The control channel, in a thread of its own, so that it answers while a
 * cell holds the main thread:
 * - interrupt_request is answered here at once. The main thread acts on it
 *   (asks awaited code and training loops to stop) when it gets the message;
 *   a cell's synchronous code that holds the main thread is broken with
 *   SIGINT (tslab runs it with breakOnSigint). If the main thread still does
 *   not answer a ping after the grace period, the code holding it is stopped
 *   through the inspector (stop-stuck.ts). While a training loop runs, only a
 *   second interrupt and another grace period do that: a long step is not a
 *   stuck thread, and stops by itself at its end.
 * - every verified message is also passed to the main thread, which handles
 *   the rest (shutdown, kernel_info, busy/idle) and sends its replies back
 *   through this thread's socket.
 * - it notices when Jupyter has died and ends the kernel (parent-watch.ts).
 * - shutdown_request is answered here at once too, and SIGTERM is heard here
 *   as well as on the main thread: the main thread's handlers cannot run
 *   while a cell holds it (`while (true) {}`), so this thread frees it as an
 *   interrupt would, and ends the process if it cannot.
 */
import { writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { loadZmq } from './zmq.js';
import { SendQueue } from './send-queue.js';
import { child, decode, encode, InvalidMessage, Signer } from './wire.js';
import { stopStuckMainThread } from './stop-stuck.js';
import { watchParent } from './parent-watch.js';
import type { ControlSetup, FromControl, ToControl } from './control-messages.js';
import { SharedState } from './shared-state.js';

/** Pings are answered within milliseconds by a free main thread, even on a loaded machine. */
const MIN_UNRESPONSIVE_MS = 500;
/** Unanswered this long, the main thread is held by code (so SIGINT, if that is a vm call, will not hit the next one). */
const SIGINT_AFTER_MS = 100;
/** After asking the main thread to shut down because Jupyter died: how long before the process is killed. */
const ORPHAN_EXIT_MS = 3000;
/** A shutdown (request or SIGTERM) that the main thread has not completed in this long ends the process by force. */
const SHUTDOWN_EXIT_MS = 8000;

const setup = workerData as ControlSetup;
const port = parentPort!;
const post = (m: FromControl) => port.postMessage(m);

/** The main thread's stderr is redirected into cells; this thread writes to the real one. */
function log(text: string): void {
  try {
    writeSync(2, `[sharelora kernel] ${text}\n`);
  } catch {
    // stderr gone (Jupyter died): nothing left to tell
  }
}

const zmq = loadZmq();
const sock = new zmq.Router({ linger: 0, sendTimeout: 0 });
const signer = new Signer(setup.key, setup.digest);
const out = new SendQueue(sock, (e) => log(`send on control failed: ${(e as Error)?.message ?? e}`));
const asBuffers = (frames: Uint8Array[]) => frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength));

let pong: (() => void) | undefined;
port.on('message', (m: ToControl) => {
  if (m.kind === 'send') out.push(asBuffers(m.frames));
  else if (m.kind === 'pong') pong?.();
  else if (m.kind === 'flush') void out.drained().then(() => post({ kind: 'flushed' }));
  else if (m.kind === 'close') sock.close();
});

let escalation: { hurry: () => void } | undefined;

/** Whether the main thread's event loop answers within `ms` (undefined: no limit), before `hurried` settles. */
function mainAnswers(ms: number | undefined, hurried?: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(() => resolve(false), ms);
    void hurried?.then(() => { clearTimeout(timer); resolve(false); });
    pong = () => { clearTimeout(timer); resolve(true); };
    post({ kind: 'ping' });
  });
}

const shared = new SharedState(setup.shared);

async function interrupt(): Promise<void> {
  if (escalation) return escalation.hurry();
  let hurry!: () => void;
  const hurried = new Promise<void>((r) => { hurry = r; });
  escalation = { hurry };
  // A cell that starts after the interrupt is not what it was meant for; interrupting again covers it.
  const starts = shared.cellStarts;
  try {
    // A free main thread acts on the request it was passed.
    if (await mainAnswers(SIGINT_AFTER_MS)) return;
    // Still in the same vm call: synchronous cell code, which V8 breaks on SIGINT. Anywhere else the
    // signal would reach the main thread's handler (or the next cell's vm call) as one interrupt too many.
    if (shared.inCellCode && shared.cellStarts === starts) process.kill(process.pid, 'SIGINT');
    // A training step may hold the thread for long and stops by itself at its end: there, only a
    // second interrupt followed by a grace period without an answer forces it.
    const grace = Math.max(setup.graceMs, MIN_UNRESPONSIVE_MS);
    const training = shared.trainingLoops > 0;
    if (await mainAnswers(training ? undefined : grace, hurried)) return;
    // After a second interrupt: it may have crossed a late answer.
    if (await mainAnswers(training ? grace : 200)) return;
    log('interrupt: the main thread has not answered since; stopping the code that holds it');
    const r = await stopStuckMainThread({
      stillStuck: async () => !await mainAnswers(100),
      mayStop: () => shared.cellStarts === starts,
      stopping: (frames) => post({ kind: 'terminated', frames }),
    });
    if (r.outcome === 'recovered') return log('interrupt: the main thread answers again');
    if (r.outcome === 'superseded') return log('interrupt: a new cell started since the interrupt; not stopping it (interrupt again to)');
    if (r.outcome === 'stopped') return log(`interrupt: stopped code at ${r.frames.join(' < ')}`);
    log(`interrupt: cannot stop the code that holds the main thread: ${r.why}${r.frames.length ? ` (at ${r.frames.join(' < ')})` : ''}`);
    post({ kind: 'unstoppable', why: r.why, frames: r.frames });
  } catch (e) {
    log(`interrupt: stopping the main thread failed: ${(e as Error)?.stack ?? e}`);
  } finally {
    escalation = undefined;
  }
}

let ending = false;

/**
 * A shutdown_request or SIGTERM, which the main thread acts on once it gets a
 * turn: if code holds it, that code is broken (SIGINT for synchronous cell
 * code, the inspector otherwise) so that it can; if that fails, or the main
 * thread then does not finish, the process ends by force.
 */
async function freeMainToEnd(why: string): Promise<void> {
  if (ending) return;
  ending = true;
  const kill = (reason: string) => {
    log(`${why}: ${reason}; ending the process`);
    void out.drained().finally(() => process.kill(process.pid, 'SIGKILL'));
  };
  setTimeout(() => kill(`the kernel has not exited ${SHUTDOWN_EXIT_MS / 1000} s later`), SHUTDOWN_EXIT_MS);
  try {
    if (await mainAnswers(MIN_UNRESPONSIVE_MS)) return;
    log(`${why}: the main thread is held by running code; stopping it so that the kernel can exit`);
    if (shared.inCellCode) {
      process.kill(process.pid, 'SIGINT');
      if (await mainAnswers(1000)) return;
    }
    const r = await stopStuckMainThread({
      stillStuck: async () => !await mainAnswers(100),
      mayStop: () => true,
      stopping: (frames) => post({ kind: 'terminated', frames }),
    });
    if ((r.outcome === 'stopped' || r.outcome === 'recovered') && await mainAnswers(1000)) return;
    kill(r.outcome === 'unstoppable' ? `the code holding the main thread cannot be stopped (${r.why})` : 'the main thread does not answer');
  } catch (e) {
    kill(`freeing the main thread failed (${(e as Error)?.message ?? e})`);
  }
}

/**
 * SIGTERM for this thread too: on the main thread it is only a callback, which
 * never runs while a cell holds that thread. Node gives worker threads no
 * signal events; its signal handle is reached through process.binding
 * (deprecated, hence quiet, as stop-stuck.ts does for async_wrap). Without it
 * a stuck kernel still ends on shutdown_request, or on Jupyter's SIGKILL.
 */
function watchSigterm(onSignal: () => void): void {
  const proc = process as unknown as { noDeprecation?: boolean; binding(name: string): { Signal?: new () => { onsignal?: () => void; start(n: number): number; unref?(): void } } };
  const quiet = proc.noDeprecation;
  proc.noDeprecation = true;
  try {
    const { Signal } = proc.binding('signal_wrap');
    if (!Signal) return;
    const handle = new Signal();
    handle.onsignal = onSignal;
    if (handle.start(osConstants.signals.SIGTERM) !== 0) return log('SIGTERM: cannot watch it from the control thread; a kernel stuck in a cell ends only on shutdown_request or SIGKILL');
    handle.unref?.();
  } catch (e) {
    log(`SIGTERM: cannot watch it from the control thread (${(e as Error)?.message ?? e}); a kernel stuck in a cell ends only on shutdown_request or SIGKILL`);
  } finally {
    proc.noDeprecation = quiet;
  }
}

function onFrames(frames: Buffer[]): void {
  let msg;
  try {
    msg = decode(frames, signer);
  } catch (e) {
    if (!(e instanceof InvalidMessage)) throw e;
    return log(`control: ${e.message}`);
  }
  const type = msg.header.msg_type;
  const answered = type === 'interrupt_request' || type === 'shutdown_request';
  if (type === 'interrupt_request') {
    out.push(encode(child(msg, 'interrupt_reply', { status: 'ok' }, setup.session, msg.identities), signer));
    void interrupt();
  } else if (type === 'shutdown_request') {
    // answered here: the main thread may be held by a cell for as long as it likes
    out.push(encode(child(msg, 'shutdown_reply', { status: 'ok', restart: (msg.content as { restart?: unknown }).restart === true }, setup.session, msg.identities), signer));
  }
  post({ kind: 'request', frames, answered });
  if (type === 'shutdown_request') void freeMainToEnd('shutdown_request');
}

watchSigterm(() => void freeMainToEnd('SIGTERM'));

watchParent(() => {
  log('the process that started the kernel has exited; shutting down');
  post({ kind: 'parent-gone' });
  setTimeout(() => {
    log('the main thread did not shut down; ending the process');
    process.kill(process.pid, 'SIGKILL');
  }, ORPHAN_EXIT_MS);
});

try {
  await sock.bind(setup.endpoint);
  post({ kind: 'bound' });
  for await (const frames of sock) {
    try {
      onFrames(frames);
    } catch (e) {
      log(`control: handling a message failed: ${(e as Error)?.stack ?? e}`);
    }
  }
} catch (e) {
  if (!sock.closed) post({ kind: 'error', message: (e as Error)?.message ?? String(e) });
}
// The socket is closed: let the thread end on its own (terminating it mid-zmq aborts the process).
port.close();
