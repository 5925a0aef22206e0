/**
 * Split-K for GEMMs whose output tiles cannot fill the GPU.
 *
 * GPT-2 small's products with N = 768 (attn/mlp c_proj forward, every dX of
 * a 768-wide input) make 16 × 6 = 96 tiles of 128 × 128 on 132 SMs: a
 * quarter of the GPU idles for the whole K loop (15.3 of the 26.4 ms of
 * block GEMMs, issue 25). gemm.ts asks splitCount where its tile rule chose
 * 128 × 128, and where it chose 64 × 64 only because K is long (the LM
 * head's dX, K = vocabulary); elsewhere 64 × 64 tiles fill the GPU. Here S
 * workgroups share each tile, each taking a
 * contiguous K-slice and writing its partial tile to an [S, M, N] scratch
 * buffer (no float atomics in WGSL); one more pass sums the S partials and
 * applies the epilogue (bias, s·U·V) the unsplit GEMM would have.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { actFunctions, type ActKind } from './activation.js';
import { dispatch, grid1d, type UniformField } from './dispatch.js';
import { each4 } from './rows.js';

/** each split's K is at least this long, so prologue and epilogue stay small against its loop */
const MIN_K_PER_SPLIT = 512;
const MAX_SPLITS = 16;
/**
 * Below ~2·10⁹ multiply-adds a product takes under ~160 µs at 25 TFLOP/s; the
 * reduce pass (S·M·N floats read, ~10–20 µs) and its launch would eat the
 * gain, and at notebook scale, where the step is bound by dispatches, every
 * extra launch costs.
 */
const MIN_WORK = 2e9;

/**
 * A product with only a few 128×128 tiles over a long K (`few`: a weight gradient in full training, dW = xᵀ·dy,
 * M and N a layer's widths and K the batch's tokens): unsplit, the tile rule gives it 32×32 tiles of 64 threads
 * (too few 64×64 ones to fill the GPU), which run far below the big tile's rate, so splitting pays even for
 * products under MIN_WORK, and more slices are worth it (a 256 × 256 gradient is 4 tiles: 32 slices make 128
 * workgroups, each still 512 deep at K = 16,384).
 */
const MIN_WORK_FEW = 2.5e8;
const MAX_SPLITS_FEW = 32;

/**
 * How many K-slices (1: no split). Modelled as equal-speed work units on
 * `sms` SMs: S slices of `tiles` tiles finish after ⌈tiles·S/sms⌉ rounds of
 * K/S each; the S minimising that, if it beats the unsplit ⌈tiles/sms⌉·K
 * by 15% or more (the reduce is not free), smallest S on ties.
 */
export function splitCount(M: number, N: number, K: number, tiles: number, sms = flags.gpuSms, o: { few?: boolean } = {}): number {
  if (!flags.gemmSplitK || M * N * K < (o.few ? MIN_WORK_FEW : MIN_WORK)) return 1;
  const maxS = Math.min(o.few ? MAX_SPLITS_FEW : MAX_SPLITS, Math.floor(K / MIN_K_PER_SPLIT));
  const unsplit = Math.ceil(tiles / sms);
  let best = 1, bestCost = unsplit;
  for (let S = 2; S <= maxS; S++) {
    const cost = Math.ceil((tiles * S) / sms) / S;
    if (cost < bestCost - 1e-9) { best = S; bestCost = cost; }
  }
  return bestCost <= 0.85 * unsplit ? best : 1;
}

/** K per split: a multiple of 16 (every tile's BK) so vec4 loads along K stay aligned. */
export function splitChunk(K: number, S: number): number {
  return Math.ceil(K / S / 16) * 16;
}

export interface ReduceArgs {
  partials: tf.TensorInfo;
  S: number; M: number; N: number;
  bias?: tf.TensorInfo;
  lowRank?: { u: tf.TensorInfo; v: tf.TensorInfo; r: number; s: number; vT: boolean };
  /** last: o ⊙= act'(h[m, n]) (gemm.ts GemmArgs.dAct) */
  dAct?: { h: tf.TensorInfo; kind: ActKind };
  outShape: number[];
}

/** products computed split (tests, profiles) */
export const splitStats = { products: 0 };

/** C[m, n] = Σ_z partials[z, m, n] (+ bias[n]) (+ s·Σ_q U[m, q]·V[n, q] or V[q, n]). */
export function reduceSplits(a: ReduceArgs): tf.TensorInfo {
  const { S, M, N, lowRank: lr } = a;
  // 4 columns per thread; vec4 access when rows stay 16-byte aligned
  const vec = N % 4 === 0;
  const T = vec ? 'vec4<f32>' : 'f32';
  // the low-rank term from vec4 reads of U and V where rows of both stay 16-byte aligned: a thread's 4 columns read
  // R/4 vec4s of U and R (or R/4) vec4s of V instead of 5·R scalars; the order of the additions per output is unchanged
  const lr4 = !!lr && vec && lr.r % 4 === 0;
  const key = `gemm_splitk_sum_${vec ? 'v' : 's'}_${a.bias ? 'b' : ''}${lr ? (lr.vT ? 'lrT' : 'lrN') : ''}${lr4 ? '4' : ''}${a.dAct ? `_d${a.dAct.kind}` : ''}`;
  const inputs: tf.TensorInfo[] = [a.partials];
  const inDecl: Array<{ name: string; type?: string }> = [{ name: 'Pt', type: T }];
  const uniforms: UniformField[] = [['M', 'u32', M], ['N', 'u32', N], ['S', 'u32', S], ['cols', 'u32', Math.ceil(N / 4)]];
  if (a.bias) { inputs.push(a.bias); inDecl.push({ name: 'bias' }); }
  if (lr) {
    inputs.push(lr.u, lr.v);
    inDecl.push({ name: 'U', type: lr4 ? 'vec4<f32>' : 'f32' }, { name: 'V', type: lr4 ? 'vec4<f32>' : 'f32' });
    uniforms.push(['R', 'u32', lr.r], ['lrs', 'f32', lr.s]);
  }
  if (a.dAct) { inputs.push(a.dAct.h); inDecl.push({ name: 'H', type: T }); }
  const total = M * Math.ceil(N / 4);
  splitStats.products++;
  const body = () => `${a.dAct ? actFunctions(a.dAct.kind) : ''}
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let i = (w3.y * n3.x + w3.x) * 256u + l3.x;
  if (i >= P.M * P.cols) { return; }
  let row = i / P.cols;
  let col = (i % P.cols) * 4u;
  var o = vec4<f32>(0.0);
  for (var z = 0u; z < P.S; z++) {
    ${vec
      ? 'o += Pt[(z * P.M * P.N + row * P.N + col) / 4u];'
      : each4('if (col + c < P.N) { o[c] += Pt[z * P.M * P.N + row * P.N + col + c]; }')}
  }${lr4 ? `
  for (var q4 = 0u; q4 < P.R / 4u; q4++) {
    let u4 = U[row * (P.R / 4u) + q4] * P.lrs;
    ${lr!.vT
      ? each4('{ let v4 = V[min(col + c, P.N - 1u) * (P.R / 4u) + q4]; o[c] += u4.x * v4.x; o[c] += u4.y * v4.y; o[c] += u4.z * v4.z; o[c] += u4.w * v4.w; }')
      : 'o += u4.x * V[((q4 * 4u) * P.N + col) / 4u]; o += u4.y * V[((q4 * 4u + 1u) * P.N + col) / 4u]; o += u4.z * V[((q4 * 4u + 2u) * P.N + col) / 4u]; o += u4.w * V[((q4 * 4u + 3u) * P.N + col) / 4u];'}
  }` : lr ? `
  for (var q = 0u; q < P.R; q++) {
    let uq = U[row * P.R + q] * P.lrs;
    ${each4(`let cc = min(col + c, P.N - 1u); o[c] += uq * ${lr.vT ? 'V[cc * P.R + q]' : 'V[q * P.N + cc]'};`)}
  }` : ''}${a.bias ? `
  ${each4(`o[c] += bias[min(col + c, P.N - 1u)];`)}` : ''}${a.dAct ? `
  ${vec ? 'o = dact4_(H[(row * P.N + col) / 4u], o);' : `{ var hv = vec4<f32>(0.0); ${each4('hv[c] = H[row * P.N + min(col + c, P.N - 1u)];')} o = dact4_(hv, o); }`}` : ''}
  ${vec ? 'C[(row * P.N + col) / 4u] = o;' : each4('if (col + c < P.N) { C[row * P.N + col + c] = o[c]; }')}
}`;
  return dispatch({ key, outputs: [{ name: 'C', type: T }], inputs: inDecl, body }, inputs, [{ shape: a.outShape }], uniforms, grid1d(Math.ceil(total / 256)))[0];
}
