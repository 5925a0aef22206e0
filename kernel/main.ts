/**
 * Kernel entry point: `node dist/kernel/main.js <connection_file>`, as
 * written into kernel.json by install.ts. The working directory is the
 * notebook's folder (Jupyter starts kernels there).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConnectionFile } from './connection.js';
import { KernelSockets } from './sockets.js';
import { TsRuntime } from './runtime.js';
import { fallbackToKernelPackages } from './resolve.js';
import { preload } from './preload.js';
import { Interrupts } from './interrupt.js';
import { Kernel } from './kernel.js';
import { captureOutput, cellScope, tslabDisplayWriter } from './output.js';
import { LateErrors } from './late-errors.js';
import { SharedState } from './shared-state.js';
import { guardProcessExit, realExit } from './exit-guard.js';
import { exposeAsyncStackReset } from './stop-stuck.js';
import { thrownToError } from './errors.js';
import { log } from './log.js';
import { progressBar } from '../src/notebook/progress.js';
import { setBrowserIdleTimeout } from '../src/notebook/chromium.js';
import type { TrainerCallbacks } from '../src/train/callbacks.js';

/** dist/kernel/main.js → the package root */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const late = new LateErrors();

/** An error no code caught: the running cell's own shows there, any other is a late error. */
function reportStray(kind: string, e: unknown): void {
  const traceback = thrownToError(e).traceback.join('\n');
  const origin = cellScope();
  if (origin && late.isRunning(origin)) origin.stream('stderr', `${kind}: ${traceback}\n`);
  else late.report(kind, origin, traceback);
}

/**
 * How long an interrupted awaited cell may take to stop by itself before it is
 * detached (SHARELORA_INTERRUPT_GRACE_MS, default 2000): long enough for a
 * training step to finish on most machines, short enough to feel responsive.
 */
function interruptGraceMs(): number {
  const raw = process.env.SHARELORA_INTERRUPT_GRACE_MS;
  if (raw === undefined || raw === '') return 2000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`SHARELORA_INTERRUPT_GRACE_MS must be a non-negative integer (milliseconds); got ${JSON.stringify(raw)}`);
  return ms;
}

async function main(): Promise<void> {
  const connectionFile = process.argv[2];
  if (!connectionFile) {
    throw new Error('usage: node dist/kernel/main.js <connection_file> (Jupyter fills this in from kernel.json)');
  }
  const info = readConnectionFile(connectionFile);
  exposeAsyncStackReset();
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  // A cell's exception or unobserved rejection must never end the kernel.
  const rejections = new WeakSet<object>();
  const onRejection = (e: unknown) => {
    if (typeof e === 'object' && e !== null) rejections.add(e);
    reportStray('Unhandled promise rejection', e);
  };
  process.on('unhandledRejection', onRejection);
  // The capture callback takes uncaught exceptions before any 'uncaughtException' listener, so
  // listeners that rethrow (Emscripten's, installed by the wasm backend) cannot end the kernel.
  process.setUncaughtExceptionCaptureCallback((e) => {
    if (typeof e === 'object' && e !== null && rejections.has(e)) return; // a foreign listener rethrew a reported rejection
    reportStray('Uncaught exception', e);
  });
  /** Emscripten's listener rethrows every rejection the kernel already reported; only ours stays. */
  const dropForeignListeners = () => {
    for (const l of process.listeners('unhandledRejection')) if (l !== onRejection) process.removeListener('unhandledRejection', l);
  };

  fallbackToKernelPackages(REPO_ROOT);
  const graceMs = interruptGraceMs();
  const shared = new SharedState();
  const sockets = await KernelSockets.bind(info, graceMs, shared);
  const runtime = new TsRuntime(process.cwd(), REPO_ROOT, shared);
  const interrupts = new Interrupts(() => runtime.interrupt(), graceMs, shared);
  process.on('SIGINT', () => interrupts.interrupt());

  const backendName = process.env.SHARELORA_BACKEND || 'auto';
  const pre = await preload(runtime, REPO_ROOT, backendName);
  const trainer = pre.library?.Trainer as { defaultCallbacks?: (() => TrainerCallbacks)[] } | undefined;
  if (trainer && Array.isArray(trainer.defaultCallbacks)) {
    trainer.defaultCallbacks.push(interrupts.trackRuns, () => progressBar());
  } else if (pre.library) {
    pre.notes.push('Trainer.defaultCallbacks is missing: no automatic progress bar, and an interrupted training loop cannot be waited for');
  }

  const backend = pre.backend ? `backend ${pre.backend.name} on ${pre.backend.device}` : 'no backend selected';
  const banner = `ShareLoRA ${version} · ${backend} · TypeScript ${runtime.tsVersion} (tslab ${runtime.tslabVersion}) · Node ${process.version}`;
  log(banner);
  log(`preloaded: ${pre.names.join(', ')}`);
  for (const n of pre.notes) log(`note: ${n}`);

  // Loaded only once the library is: it imports the library's backend module.
  const guard = pre.backend ? new (await import('./backend-guard.js')).BackendGuard(dropForeignListeners) : undefined;
  await guard?.start();
  dropForeignListeners();

  setBrowserIdleTimeout(10 * 60_000);
  captureOutput();
  guardProcessExit();
  runtime.tslabDisplayWriter = tslabDisplayWriter;
  const kernel = new Kernel(sockets, runtime, interrupts, { banner, version, tsVersion: runtime.tsVersion }, pre.notes, late, guard);
  sockets.onNotice = (n) => {
    if (n.kind === 'terminated') kernel.stuckCodeStopped(n.frames);
    else if (n.kind === 'unstoppable') kernel.stuckCodeUnstoppable(n.why);
    else if (n.kind === 'parent-gone') {
      log('Jupyter (the kernel\'s parent process) is gone: exiting');
      void kernel.exit(0);
    }
  };
  kernel.start();
  process.on('SIGTERM', () => void kernel.exit(0));
}

main().catch((e) => {
  log(`failed to start: ${(e as Error).stack ?? e}`);
  realExit(1);
});
