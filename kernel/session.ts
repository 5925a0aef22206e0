/**
 * Everything a kernel session needs before it can run cells: the TypeScript
 * runtime with the preloaded names, the backend, the Trainer's progress and
 * interrupt callbacks, the guard against backend failures, and output capture.
 * Shared by the Jupyter kernel (main.ts) and the headless runner (run.ts), so a
 * notebook sees the same names, displays, progress and errors under both.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flags } from '../src/backend/flags.js';
import { TsRuntime } from './runtime.js';
import { fallbackToKernelPackages } from './resolve.js';
import { preload } from './preload.js';
import { Interrupts } from './interrupt.js';
import { captureOutput, cellScope, tslabDisplayWriter } from './output.js';
import { LateErrors } from './late-errors.js';
import { SharedState } from './shared-state.js';
import { guardProcessExit } from './exit-guard.js';
import { exposeAsyncStackReset } from './stop-stuck.js';
import { thrownToError } from './errors.js';
import { log } from './log.js';
import type { BackendGuard } from './backend-guard.js';
import type { KernelIdentity } from './kernel.js';
import { progressBar } from '../src/notebook/progress.js';
import { setBrowserIdleTimeout } from '../src/notebook/chromium.js';
import type { TrainerCallbacks } from '../src/train/callbacks.js';

/** dist/kernel/session.js → the package root */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface KernelSession {
  runtime: TsRuntime;
  interrupts: Interrupts;
  identity: KernelIdentity;
  /** shown once, on stderr of the first cell */
  notes: string[];
  guard?: BackendGuard;
  /** errors from cells that already finished, shown in the running or next cell */
  late: LateErrors;
  /** the backend the preload started, if any */
  backend?: { name: string; device: string };
}

/** An error no code caught: the running cell's own shows there, any other is a late error. */
function reportStray(late: LateErrors, kind: string, e: unknown): void {
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
export function interruptGraceMs(): number {
  return flags.interruptGraceMs;
}

/**
 * @param cwd the notebook's folder (cells resolve imports and files from there)
 * @param backendName what the preloaded `useBackend` starts with ('auto', 'wasm', …)
 */
export interface SessionWiring {
  /** what the kernel's control thread and the cell thread both read */
  shared?: SharedState;
  graceMs?: number;
}

export async function startSession(cwd: string, backendName: string, wiring: SessionWiring = {}): Promise<KernelSession> {
  const shared = wiring.shared ?? new SharedState();
  const graceMs = wiring.graceMs ?? interruptGraceMs();
  exposeAsyncStackReset();
  const late = new LateErrors();
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  // A cell's exception or unobserved rejection must never end the session.
  const rejections = new WeakSet<object>();
  const onRejection = (e: unknown) => {
    if (typeof e === 'object' && e !== null) rejections.add(e);
    reportStray(late, 'Unhandled promise rejection', e);
  };
  process.on('unhandledRejection', onRejection);
  // The capture callback takes uncaught exceptions before any 'uncaughtException' listener, so
  // listeners that rethrow (Emscripten's, installed by the wasm backend) cannot end the session.
  process.setUncaughtExceptionCaptureCallback((e) => {
    if (typeof e === 'object' && e !== null && rejections.has(e)) return; // a foreign listener rethrew a reported rejection
    reportStray(late, 'Uncaught exception', e);
  });
  /** Emscripten's listener rethrows every rejection the session already reported; only ours stays. */
  const dropForeignListeners = () => {
    for (const l of process.listeners('unhandledRejection')) if (l !== onRejection) process.removeListener('unhandledRejection', l);
  };

  fallbackToKernelPackages(REPO_ROOT);
  const runtime = new TsRuntime(cwd, REPO_ROOT, shared);
  const interrupts = new Interrupts(() => runtime.interrupt(), graceMs, shared);
  process.on('SIGINT', () => interrupts.interrupt());

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
  return { runtime, interrupts, identity: { banner, version, tsVersion: runtime.tsVersion }, notes: pre.notes, guard, late, backend: pre.backend };
}
