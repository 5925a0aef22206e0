/// <reference types="@webgpu/types" />
/**
 * GPU errors that nothing captured, and a lost device.
 *
 * WebGPU reports an out-of-memory or validation error asynchronously, as an
 * event, and the call that caused it returns an invalid object: a buffer
 * that could not be made reads back zeros. On 2026-12-06 sixteen notebook
 * processes ran one H100 out of memory, and runs of that call were cached
 * with a validation loss of exactly ln 2 (a head reading zeros) — results
 * that looked like results. So every webgpu device is watched, and
 * `gpuHealth()` tells a caller (the run cache, the trainer) whether anything
 * went wrong on the current device.
 */
import type { WebGPUBackendLike } from './dispatch.js';

interface State { errors: number; first?: string; lost?: string }
/** per device: after resetBackend replaces a lost device, runs on the new one are judged by its own record */
const states = new WeakMap<object, State>();

export function watchDevice(be: WebGPUBackendLike): void {
  const device = be.device as GPUDevice & { addEventListener?: GPUDevice['addEventListener'] };
  if (states.has(device)) return;
  const state: State = { errors: 0 };
  states.set(device, state);
  device.addEventListener?.('uncapturederror', (ev: Event) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    state.errors++;
    state.first ??= `${e?.constructor?.name ?? 'GPUError'}: ${String(e?.message ?? e).split('\n')[0]}`;
  });
  // a device destroyed on purpose (releaseGPU, resetBackend) is not a failure
  device.lost?.then((info) => { if (info.reason !== 'destroyed') state.lost ??= `${info.reason ?? 'unknown'}: ${info.message}`; });
}

export interface GpuHealth { errors: number; first?: string; lost?: string }

/** GPU errors and loss of the backend's device so far, after the device has finished the work submitted to it */
export async function gpuHealth(be: WebGPUBackendLike): Promise<GpuHealth> {
  const device = be.device as GPUDevice;
  const state = states.get(device);
  // a device never watched (registerKernels not run on it) reports nothing rather than a clean bill
  if (!state) throw new Error('gpuHealth: this webgpu device is not watched (useBackend("webgpu") watches it)');
  await device.queue.onSubmittedWorkDone();
  // the error event of the last submission is delivered on the event loop after the queue drains
  await new Promise((r) => setTimeout(r, 0));
  return { errors: state.errors, ...(state.first ? { first: state.first } : {}), ...(state.lost ? { lost: state.lost } : {}) };
}
