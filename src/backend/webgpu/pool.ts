/// <reference types="@webgpu/types" />
/**
 * A cap on the free buffers tfjs's webgpu buffer pool keeps.
 *
 * tfjs-backend-webgpu (4.22) pools buffers by exact (size, usage) and never
 * destroys a free one: every tensor shape a process ever saw keeps its
 * buffers for good. With length-bucketed batches that is a new set of
 * activation buffers for every padded length: 06-generation's 50 training
 * batches alone have ~40 distinct lengths (15–64 tokens of 64 rows), its
 * evaluation batches 8 more, and each decoding step (rows × growing length)
 * another, so one process's pool grows to many GB and 16 processes ran an
 * 80 GB H100 out of memory (scripts/notebook-memory.ts measures it).
 *
 * Here, once the free buffers exceed the cap, those of the sizes asked for
 * least recently are destroyed until the free bytes are at 3/4 of the cap
 * (the slack keeps the sort off the hot path), but never a size asked for
 * within the last RECENT acquisitions: a training step whose own working set
 * is larger than the cap (GPT-2 small frees ~3 GiB at the end of every step)
 * would otherwise destroy and re-create its buffers every step, which cost
 * 51 → 68 ms a step on the H100 at a 2 GiB cap (bench/NOTES.md entry 14).
 * When nothing old enough is left to destroy, the next trim waits a quarter
 * window, so an over-cap working set does not sort on every release. Past
 * four times the cap, the least recently asked sizes go whatever their age.
 * A buffer is free only after the commands that used it were submitted
 * (tfjs releases command-queue buffers in submitQueue), and WebGPU lets a
 * buffer be destroyed while submitted work still uses it, so this is safe; the sizes a training loop
 * repeats every step are the most recent ones and stay pooled.
 * SHARELORA_WEBGPU_POOL_MIB sets the cap; 0 keeps tfjs's unbounded pool.
 */
import { flags } from '../flags.js';
import type { WebGPUBackendLike } from './dispatch.js';
import { replayRelease } from './replay.js';

interface BufferManagerInternals {
  numBytesUsed: number;
  numBytesAllocated: number;
  numFreeBuffers: number;
  freeBuffers: Map<string, GPUBuffer[]>;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
  releaseBuffer(buffer: GPUBuffer, reuse?: boolean): void;
}

export const poolStats = { destroyed: 0, destroyedBytes: 0, trims: 0 };
const installed = new WeakSet<object>();
let capBytes: number | undefined;
/** acquisitions a size stays protected after it was asked for: ~10 GPT-2-small steps, a few hundred decoding steps */
const RECENT = 20000;
let recent = RECENT;
/** free bytes past HARD × cap are trimmed whatever their age (8 GiB at the default cap; GPT-2 small frees ~3 GiB a step) */
const HARD = 4;
/** the acquisition count before which no trim is tried again (one backend per process; new settings clear it) */
let nextTrim = 0;

/** Bytes of free buffers the pool may keep, and the protection window (tests lower both); undefined: the defaults. */
export function setPoolCap(bytes: number | undefined, recentAcquisitions?: number): void {
  capBytes = bytes;
  recent = recentAcquisitions ?? RECENT;
  nextTrim = 0;
}

export function installPoolCap(be: WebGPUBackendLike): void {
  const bm = be.bufferManager as unknown as BufferManagerInternals;
  if (installed.has(bm)) return;
  installed.add(bm);
  const lastAsked = new Map<string, number>();
  let tick = 0;
  const acquire = bm.acquireBuffer.bind(bm);
  bm.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    lastAsked.set(`${size}_${usage}`, ++tick);
    return acquire(size, usage, mappedAtCreation, reuse);
  };
  const release = bm.releaseBuffer.bind(bm);
  bm.releaseBuffer = (buffer, reuse = true) => {
    // a buffer a recorded step owns (replay.ts) stays out of the free lists
    if (replayRelease(bm, release, buffer)) return;
    release(buffer, reuse);
    const cap = capBytes ?? flags.webgpuPoolMiB * 2 ** 20;
    if (!reuse || cap <= 0) return;
    const free = bm.numBytesAllocated - bm.numBytesUsed;
    // past HARD × cap even recent sizes go, least recently asked first: decoding asks for a new logits size every
    // token and never again in that call, and those must not pile up for a whole window
    if (free > HARD * cap) { trim(bm, lastAsked, (HARD - 1) * cap, Infinity); return; }
    if (tick < nextTrim || free <= cap) return;
    if (!trim(bm, lastAsked, 0.75 * cap, tick - recent)) nextTrim = tick + Math.ceil(recent / 4);
  };
}

/** Destroys free buffers of sizes last asked for before `olderThan`, oldest first; true if the free bytes reached `target`. */
function trim(bm: BufferManagerInternals, lastAsked: Map<string, number>, target: number, olderThan: number): boolean {
  poolStats.trims++;
  let free = bm.numBytesAllocated - bm.numBytesUsed;
  const keys = [...bm.freeBuffers.keys()].filter((k) => bm.freeBuffers.get(k)!.length > 0 && (lastAsked.get(k) ?? 0) < olderThan)
    .sort((a, b) => (lastAsked.get(a) ?? 0) - (lastAsked.get(b) ?? 0));
  for (const k of keys) {
    const list = bm.freeBuffers.get(k)!;
    while (list.length && free > target) {
      const b = list.pop()!;
      free -= b.size;
      bm.numBytesAllocated -= b.size;
      bm.numFreeBuffers--;
      poolStats.destroyed++;
      poolStats.destroyedBytes += b.size;
      b.destroy();
    }
    if (free <= target) break;
  }
  return free <= target;
}
