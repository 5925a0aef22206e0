/**
 * Backend failures a cell cannot see or survive by itself.
 *
 * - WebGPU reports out-of-memory and validation errors asynchronously: Dawn
 *   hands back garbage and carries on. Each cell runs inside error scopes,
 *   and what they caught becomes the cell's error.
 * - A lost WebGPU device (driver reset, device.destroy()) takes every tensor
 *   on it along.
 * - An aborted wasm module (its heap exhausted) fails every later op.
 *
 * The last two are reported to the running cell, or to the next one when the
 * kernel was idle, and the backend is re-created so that later cells run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { resetBackend, useBackend } from '../src/backend/index.js';
import type { ErrorContent } from './errors.js';
import type { ExecOutcome } from './runtime.js';
import { log } from './log.js';

const RED = '\x1b[0;31m';
const RESET = '\x1b[0m';
const SCOPES = ['internal', 'out-of-memory', 'validation'] as const;

interface Device {
  lost: Promise<{ reason: string; message: string }>;
  limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number };
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string; constructor: { name: string } } | null>;
  onuncapturederror: ((ev: { error: { message: string; constructor: { name: string } } }) => void) | null;
}
interface WebGPUBackendLike {
  device?: Device;
  commandEncoder?: unknown;
  endComputePassEncoder?(): void;
  submitQueue?(): void;
}

function webgpu(): WebGPUBackendLike | undefined {
  return tf.getBackend() === 'webgpu' ? tf.backend() as unknown as WebGPUBackendLike : undefined;
}

function errorContent(ename: string, lines: string[]): ErrorContent {
  return { ename, evalue: lines.join('\n'), traceback: [`${RED}${ename}${RESET}: ${lines[0]}`, ...lines.slice(1)] };
}

function firstLines(s: string, n = 4): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, n).join(' ');
}

const GONE = 'Every tensor, model, adapter and optimizer state that lived on it is gone; files saved on disk are untouched.';

export class BackendGuard {
  /**
   * @param afterChange runs whenever a backend may have been (re)initialised: the wasm module
   *   installs process-wide handlers that rethrow every uncaught error, which the kernel removes.
   */
  constructor(private readonly afterChange: () => void = () => {}) {}

  private readonly watched = new WeakSet<object>();
  private scoped?: Device;
  private running = false;
  /** loss reported by Dawn while a cell ran; handled when it ends */
  private lostInCell?: { reason: string; message: string };
  private recovering?: Promise<void>;
  /** stderr notes for the next cell */
  private notes: string[] = [];

  /** Start watching the backend chosen at start-up. */
  async start(): Promise<void> {
    this.watch();
    await this.checkWasm(false);
    this.afterChange();
  }

  /**
   * Before a cell: finish any recovery, open the error scopes.
   * @param takeNotes hand over what happened since the last cell (a silent request leaves them for the next).
   */
  async beforeCell(takeNotes = true): Promise<string[]> {
    await this.recovering;
    await this.checkWasm(false);
    await this.recovering;
    this.running = true;
    this.lostInCell = undefined;
    this.watch();
    const dev = webgpu()?.device;
    if (dev) {
      for (const s of SCOPES) dev.pushErrorScope(s);
      this.scoped = dev;
    }
    if (!takeNotes) return [];
    const notes = this.notes;
    this.notes = [];
    return notes;
  }

  /**
   * After a cell: close the scopes, check the backend is alive.
   * @returns the error that replaces the cell's own outcome, if any.
   */
  async afterCell(outcome: ExecOutcome): Promise<ErrorContent | undefined> {
    const dev = this.scoped;
    this.scoped = undefined;
    let replaced: ErrorContent | undefined;
    try {
      if (dev) {
        // Commands still being encoded would otherwise be validated on the next cell's scopes.
        const be = webgpu();
        if (be?.device === dev && be.commandEncoder) {
          try { be.endComputePassEncoder?.(); be.submitQueue?.(); } catch { /* the scopes say what went wrong */ }
        }
        const caught: { message: string; constructor: { name: string } }[] = [];
        for (let i = 0; i < SCOPES.length; i++) {
          const e = await dev.popErrorScope().catch(() => null);
          if (e) caught.push(e);
        }
        // Dawn settles `lost` a little after the failing call; look once more before deciding.
        await new Promise((r) => setImmediate(r));
        if (this.lostInCell) replaced = await this.deviceLost(this.lostInCell, outcome);
        else if (caught.length) replaced = this.gpuError(caught, dev, outcome);
      }
      if (!replaced) replaced = await this.checkWasm(true, outcome);
      this.watch();
      this.afterChange();
      return replaced;
    } finally {
      this.running = false;
    }
  }

  /** Attach the lost/uncaptured-error listeners to the current device, once per device. */
  private watch(): void {
    const dev = webgpu()?.device;
    if (!dev || this.watched.has(dev)) return;
    this.watched.add(dev);
    dev.onuncapturederror = (ev) => {
      // Errors outside a cell's scopes come from work left running (a detached cell): tell the next cell.
      const text = `WebGPU ${ev.error.constructor.name} outside any cell: ${firstLines(ev.error.message)}`;
      log(text);
      this.notes.push(text);
    };
    void dev.lost.then((info) => this.onLost(dev, info));
  }

  private onLost(dev: Device, info: { reason: string; message: string }): void {
    log(`webgpu device lost: ${info.reason}: ${info.message}`);
    // A device the session no longer uses (replaced after an earlier loss) may be reported lost late.
    if (webgpu()?.device !== dev) return;
    if (this.running) {
      this.lostInCell = info;
      return;
    }
    this.recovering = (async () => {
      const { lines } = await this.recover('webgpu', info);
      this.notes.push(`GPUDeviceLost while no cell was running: ${lines.join('\n')}`);
    })();
  }

  private async deviceLost(info: { reason: string; message: string }, outcome: ExecOutcome): Promise<ErrorContent> {
    const { lines } = await this.recover('webgpu', info);
    return errorContent('GPUDeviceLost', [...lines, ...this.alsoRaised(outcome)]);
  }

  private gpuError(caught: { message: string; constructor: { name: string } }[], dev: Device, outcome: ExecOutcome): ErrorContent {
    const first = caught.find((e) => e.constructor.name === 'GPUOutOfMemoryError') ?? caught[0]!;
    const kind = first.constructor.name;
    const ename = /^GPU(OutOfMemory|Validation|Internal)Error$/.test(kind) ? kind : 'GPUError';
    const limit = dev.limits?.maxStorageBufferBindingSize;
    const what = kind === 'GPUOutOfMemoryError'
      ? 'The GPU ran out of memory during this cell.'
      : `WebGPU rejected work of this cell${limit ? ` (this device binds at most ${(limit / 2 ** 20).toFixed(0)} MiB per tensor)` : ''}.`;
    return errorContent(ename, [
      `${what} Dawn says: ${firstLines(first.message)}`,
      'Tensors computed in this cell hold garbage. Use a smaller batch or sequence length, free tensors you no longer need ' +
        '(tf.dispose(...), tf.disposeVariables()), or restart the kernel.',
      ...this.alsoRaised(outcome),
    ]);
  }

  private alsoRaised(outcome: ExecOutcome): string[] {
    return outcome.ok || !outcome.error ? [] : [`(the cell itself raised ${outcome.error.ename}: ${firstLines(outcome.error.evalue, 2) || '(no message)'})`];
  }

  /**
   * An aborted wasm module throws on every call, so one tiny op tells.
   * @param inCell report to the cell that just ran (an error) rather than as a note.
   */
  private async checkWasm(inCell: boolean, outcome?: ExecOutcome): Promise<ErrorContent | undefined> {
    if (tf.getBackend() !== 'wasm') return undefined;
    let death: string;
    try {
      tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
      return undefined;
    } catch (e) {
      death = `${(e as Error).name}: ${firstLines(String((e as Error).message), 1)}`;
    }
    const { lines } = await this.recover('wasm', { reason: 'aborted', message: death });
    if (inCell) return errorContent('WasmAborted', [...lines, ...this.alsoRaised(outcome!)]);
    this.notes.push(`WasmAborted while no cell was running: ${lines.join('\n')}`);
    return undefined;
  }

  /** Re-create the backend (falling back to wasm, then cpu) and describe what happened. */
  private async recover(name: 'webgpu' | 'wasm', info: { reason: string; message: string }): Promise<{ lines: string[] }> {
    const what = name === 'webgpu'
      ? `The WebGPU device was lost (${info.reason}${info.message ? `: ${firstLines(info.message, 2)}` : ''}). ${GONE}`
      : `The wasm backend's WebAssembly module died (${info.message}), most likely because a batch's tensors did not fit in its heap (4 GB at most). ${GONE}`;
    const redo = 'Re-run the cells that load the model and data before using them again';
    const why = name === 'webgpu' ? 'WebGPU device that was lost' : 'wasm module that aborted';
    let how: string;
    try {
      const b = await resetBackend(name, why);
      how = `The kernel started a fresh ${b.name} backend (${b.device}). ${redo}${name === 'wasm' ? ', with a smaller batch or sequence length' : ''}.`;
    } catch (e) {
      const fallback = name === 'webgpu' ? 'wasm' : 'cpu';
      const reason = firstLines((e as Error).message, 1);
      log(`re-creating ${name} failed: ${(e as Error).stack ?? e}`);
      try {
        const b = await useBackend(fallback);
        how = `A fresh ${name} backend could not be started (${reason}), so the kernel switched to ${b.name} (${b.device}). ${redo}; restart the kernel to get ${name} back.`;
      } catch (e2) {
        const b = await useBackend('cpu');
        how = `Neither ${name} (${reason}) nor ${fallback} (${firstLines((e2 as Error).message, 1)}) could be started, so the kernel switched to ${b.name}. ${redo}; restart the kernel to get ${name} back.`;
      }
    }
    this.watch();
    this.afterChange();
    return { lines: [what, how] };
  }
}
