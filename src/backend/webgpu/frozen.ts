/**
 * Frozen weights also kept transposed, so a GEMM reads them along rows.
 *
 * A product that takes its B operand transposed (B stored [N, K]) reads it
 * along K: each thread loads 4 consecutive K of one row and scatters them
 * into shared memory one float at a time. On the H200 that cost ~31%
 * (mlp.c_proj dX at 25.4 TFLOP/s against c_fc forward's 36.9, same M, N, K;
 * issue 25), and every frozen weight is read that way once a step: GPT-2's
 * Conv1D weights in each dX, nn.Linear weights (LLaMA, RoBERTa) in each
 * forward, the tied LM head (x·Wteᵀ) in the forward. Frozen weights do not
 * change, so a transposed copy [K, Np] (N padded to a multiple of 4 with
 * zeros, so vec4 loads stay aligned even for a 50,257-word vocabulary) is
 * made once per weight and reused every step.
 *
 * Keyed by the tensor's dataId. A tfjs tensor's data never changes under
 * its dataId (assigning a variable, as adapter.merge() does, gives it a new
 * one; AdamW in place, which does not, calls forgetFrozen), so a copy can never be stale; copies whose source is gone are freed
 * on the next miss. The base model's weights are plain tensors, not
 * variables, so "frozen" is recognised by use: a copy is made the second
 * time the same tensor is a transposed B (a weight is, every step; an
 * activation almost never), and never for a trainable variable (it changes
 * every step). The copies' total is capped (SHARELORA_GEMM_PRETRANSPOSE,
 * MiB): past the cap a weight keeps the transposed read, so the largest
 * model that fits loses at most the cap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { dispatch, grid1d, webgpuBackend, type WebGPUBackendLike } from './dispatch.js';

/** below 16 Ki elements (64 KiB) a copy saves less than the dispatch that makes it */
const MIN_ELEMENTS = 1 << 14;

interface Entry { t: tf.TensorInfo; bytes: number; ld: number }
const copies = new Map<object, Entry>();
/** dataIds seen once as a transposed B */
let seen = new WeakSet<object>();
let owner: WebGPUBackendLike | undefined;
let bytesHeld = 0;

export const frozenStats = { hits: 0, made: 0, refused: 0 };

export function frozenCopyBytes(): number { return bytesHeld; }

/** Frees every copy (tests; a backend being replaced). */
export function releaseFrozenCopies(): void {
  const be = owner;
  for (const e of copies.values()) be?.disposeData(e.t.dataId, true);
  copies.clear();
  bytesHeld = 0;
  seen = new WeakSet();
}

function sweep(be: WebGPUBackendLike): void {
  for (const [id, e] of copies) {
    if (!be.tensorMap.has(id)) {
      be.disposeData(e.t.dataId, true);
      copies.delete(id);
      bytesHeld -= e.bytes;
    }
  }
}

/**
 * Forgets the copy of the tensor under `dataId` and that it was seen: its data was written in place (AdamW in
 * place, optim.ts), which breaks the rule above. A trainable variable is never copied, but the same data reached
 * through a reshape is a plain tensor to transposedFrozen.
 */
export function forgetFrozen(dataId: object): void {
  seen.delete(dataId);
  const e = copies.get(dataId);
  if (!e) return;
  owner?.disposeData(e.t.dataId, true);
  copies.delete(dataId);
  bytesHeld -= e.bytes;
}

/**
 * For B stored [N, K] and read transposed: its transposed copy [K, ld] with
 * ld = N rounded up to 4 (zeros beyond N), or undefined when B does not
 * qualify (first sighting, a trainable variable, too small, over the cap, switched off).
 */
export function transposedFrozen(b: tf.TensorInfo, N: number, K: number): { t: tf.TensorInfo; ld: number } | undefined {
  const cap = flags.gemmPretransposeMiB * 2 ** 20;
  if (cap === 0 || (b instanceof tf.Variable && b.trainable) || b.dtype !== 'float32' || N * K < MIN_ELEMENTS) return undefined;
  const be = webgpuBackend();
  if (owner !== be) { copies.clear(); bytesHeld = 0; seen = new WeakSet(); owner = be; } // a replaced backend took its buffers with it
  const hit = copies.get(b.dataId);
  if (hit) { frozenStats.hits++; return hit; }
  sweep(be);
  if (!seen.has(b.dataId)) { seen.add(b.dataId); return undefined; }
  const ld = Math.ceil(N / 4) * 4;
  const bytes = K * ld * 4;
  if (bytesHeld + bytes > cap) { frozenStats.refused++; return undefined; }
  const [t] = dispatch({
    key: 'frozen_transpose_pad',
    outputs: [{ name: 'T' }],
    inputs: [{ name: 'Bm' }],
    body: () => `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let i = (w3.y * n3.x + w3.x) * 256u + l3.x;
  if (i >= P.K * P.ld) { return; }
  let k = i / P.ld; let n = i % P.ld;
  if (n < P.N) { T[i] = Bm[n * P.K + k]; } else { T[i] = 0.0; }
}`,
  }, [b], [{ shape: [K, ld] }], [['N', 'u32', N], ['K', 'u32', K], ['ld', 'u32', ld]], grid1d(Math.ceil((K * ld) / 256)));
  const e = { t, bytes, ld };
  copies.set(b.dataId, e);
  bytesHeld += bytes;
  frozenStats.made++;
  return e;
}
