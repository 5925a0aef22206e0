/**
 * Stops JavaScript that holds the main thread without ever yielding to the
 * event loop, such as `for (;;) await 0` or a promise chain that re-queues
 * itself. Such code runs as microtasks, outside the vm call that tslab's
 * breakOnSigint guards, so SIGINT's JavaScript handler never gets a turn.
 * This runs in the control thread and reaches the main thread through the
 * inspector, whose messages V8 handles even while JavaScript runs.
 *
 * Terminating at an arbitrary point is not safe in Node: it skips the
 * bookkeeping of whatever Node-internal or kernel code is on the stack
 * (async_hooks' context stack, the timer list), and Node then aborts. So the
 * main thread is paused first, stepped out of internal and kernel frames,
 * and terminated only when the stack holds user code alone (a cell, the
 * library, packages) above at most Node's microtask runner. The async context
 * stack, which the interrupted callback leaves pushed, is cleared first; that
 * is what Node itself does after an uncaught exception.
 *
 * Termination also drops every queued promise callback of the process, not
 * only the cell's; the kernel does not rely on those (send-queue.ts).
 */
import { Session } from 'node:inspector';

const CLEAR_ASYNC_STACK = 'sharelora.clearAsyncIdStack';

/**
 * Run on the main thread before any cell: puts Node's own reset of the async
 * context stack where the inspector can call it. process.binding is
 * deprecated (a warning would land in a cell), but it is the only way to it.
 */
export function exposeAsyncStackReset(): void {
  const proc = process as unknown as { noDeprecation?: boolean; binding(name: string): { clearAsyncIdStack?: () => void } };
  const quiet = proc.noDeprecation;
  proc.noDeprecation = true;
  try {
    const binding = proc.binding('async_wrap');
    if (typeof binding.clearAsyncIdStack === 'function') (globalThis as Record<symbol, unknown>)[Symbol.for(CLEAR_ASYNC_STACK)] = binding.clearAsyncIdStack;
  } catch {
    // A Node.js without it: stopStuckMainThread then declines to terminate, and says why.
  } finally {
    proc.noDeprecation = quiet;
  }
}

export type StopOutcome =
  | { outcome: 'stopped'; frames: string[] }
  /** the code finished by itself meanwhile */
  | { outcome: 'recovered' }
  /** other code than the interrupt was meant for runs now (mayStop said no) */
  | { outcome: 'superseded' }
  | { outcome: 'unstoppable'; why: string; frames: string[] };

interface CallFrame {
  functionName: string;
  location: { scriptId: string; lineNumber: number };
}

const PAUSE_TIMEOUT_MS = 2000;
const MAX_STEPS = 200;
const ATTEMPTS_MS = 5000;

/** Where a frame's code comes from: Node itself, this kernel (or its tslab/zeromq), or the user. */
export function frameOwner(url: string): 'node' | 'kernel' | 'user' {
  if (url.startsWith('node:') || url === '') return 'node';
  if (/[\\/]dist[\\/]kernel[\\/]|[\\/]node_modules[\\/](tslab|zeromq|@tslab)[\\/]/.test(url)) return 'kernel';
  return 'user';
}

/**
 * Frames that may be unwound: user code throughout, except that the
 * outermost frame may be Node's microtask runner, which copes with an
 * aborted run (it finds its tick flag still set and runs again).
 */
export function safeToTerminate(owners: { owner: string; name: string }[]): boolean {
  if (owners.length === 0 || owners[0]!.owner !== 'user') return false;
  return owners.every((f, i) => f.owner === 'user' || (i === owners.length - 1 && f.owner === 'node' && f.name === 'processTicksAndRejections'));
}

export interface StopChecks {
  /** asked between attempts, with the main thread running: code that finished by itself needs no stopping */
  stillStuck(): Promise<boolean>;
  /** asked with the main thread paused, just before terminating */
  mayStop(): boolean;
  /**
   * Called with the main thread paused, right before it is terminated: a
   * message posted now is waiting when it resumes, ahead of its timers.
   */
  stopping(frames: string[]): void;
}

export async function stopStuckMainThread(checks: StopChecks): Promise<StopOutcome> {
  const session = new Session();
  session.connectToMainThread();
  const urls = new Map<string, string>();
  session.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
  const post = <T = unknown>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r as T))));
  let paused: ((frames: CallFrame[]) => void) | undefined;
  session.on('Debugger.paused', (m) => paused?.(m.params.callFrames as unknown as CallFrame[]));
  const nextPause = (request: () => Promise<unknown>) => new Promise<CallFrame[] | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), PAUSE_TIMEOUT_MS);
    paused = (frames) => { clearTimeout(timer); resolve(frames); };
    request().catch(() => { clearTimeout(timer); resolve(undefined); });
  });
  const describe = (frames: CallFrame[]) => frames.map((f) => {
    const url = urls.get(f.location.scriptId) ?? '';
    return { owner: frameOwner(url), name: f.functionName, text: `${f.functionName || '<anonymous>'} (${url || 'native'}:${f.location.lineNumber + 1})` };
  });

  let last: ReturnType<typeof describe> = [];
  try {
    await post('Debugger.enable');
    const until = Date.now() + ATTEMPTS_MS;
    while (Date.now() < until) {
      let frames = await nextPause(() => post('Debugger.pause'));
      if (!frames) {
        if (!await checks.stillStuck()) return { outcome: 'recovered' };
        return { outcome: 'unstoppable', why: 'the main thread ran no JavaScript that could be paused (busy in native code)', frames: [] };
      }
      for (let steps = 0; frames && describe(frames)[0]?.owner !== 'user' && steps < MAX_STEPS; steps++) {
        frames = await nextPause(() => post('Debugger.stepOut'));
      }
      if (!frames) continue;
      last = describe(frames);
      if (!checks.mayStop()) {
        await post('Debugger.resume');
        return { outcome: 'superseded' };
      }
      if (safeToTerminate(last)) {
        const key = `Symbol.for(${JSON.stringify(CLEAR_ASYNC_STACK)})`;
        const reset = await post<{ result: { value?: unknown } }>('Runtime.evaluate', {
          expression: `typeof globalThis[${key}] === 'function' && (globalThis[${key}](), true)`, returnByValue: true,
        });
        if (reset.result.value !== true) {
          await post('Debugger.resume');
          return { outcome: 'unstoppable', why: 'this Node.js version offers no way to reset its async context stack, without which terminating would abort the kernel', frames: last.map((f) => f.text) };
        }
        checks.stopping(last.map((f) => f.text));
        const terminated = post('Runtime.terminateExecution');
        await post('Debugger.resume');
        await terminated;
        return { outcome: 'stopped', frames: last.map((f) => f.text) };
      }
      await post('Debugger.resume');
      if (!await checks.stillStuck()) return { outcome: 'recovered' };
    }
    return { outcome: 'unstoppable', why: 'the stuck code never ran with only user code on the stack (it sits under Node\'s timers or the kernel)', frames: last.map((f) => f.text) };
  } finally {
    await post('Debugger.disable').catch(() => {});
    session.disconnect();
  }
}
