/**
 * GEMMs with one side of at most 8: the LoRA bottleneck products
 * u = x·Aᵀ, g = dy·B [tokens, r], dA = gᵀ·x [r, in] and dB = dyᵀ·u [out, r].
 *
 * On the tiled GEMM these ran 0.13–0.6 ms each on the H200 (bench/NOTES.md):
 * a 32-wide tile is three quarters padding at r = 8, and a few dozen
 * workgroups walk the whole K (up to 2304) alone. Here a workgroup takes 16
 * rows of the long side and all ≤ 8 columns; its 256 threads split K into 16
 * lanes and reduce through shared memory, so every element of the big
 * operand is read once, coalesced.
 *
 * C [M, N≤8] = alpha·op(A)·op(B); an M ≤ 8 product is computed as its
 * transpose (Cᵀ = op(B)ᵀ·op(A)ᵀ) and stored transposed.
 *
 * dA and dB reduce over the tokens (K = 4096 at notebook scale) onto a
 * long side of only 256–768: 16–48 workgroups, each walking all of K. On
 * the H100 they took 116 and 98 µs a layer (bench/NOTES.md entry 17). When
 * the workgroups cannot fill the GPU, K is split: each of S workgroups per
 * row group sums its K-slice into a partial [S, M, N], and a second pass
 * adds the S partials and stores (transposed where flipped).
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { dispatch, grid1d } from './dispatch.js';

export const THIN_MAX = 8;
const ROWS = 16, LANES = 16;
/** each split keeps at least this much of K, so its loop outweighs the partial's store */
const MIN_K_PER_SPLIT = 256;
const MAX_SPLITS = 32;

/**
 * K-slices for a thin product with `groups` row groups (1: no split): enough workgroups for SHARELORA_GEMM_THIN_WAVES
 * (default 8; 2 until session 20) a GPU's SMs, where the row groups alone make under half that. These products are
 * bound by how fast the big operand is read, which takes more warps in flight than two 256-thread workgroups an SM
 * (bench/NOTES.md 35, and "35 and 36, measured").
 */
export function thinSplits(groups: number, K: number, sms = flags.gpuSms, waves = flags.gemmThinWaves): number {
  if (!flags.gemmSplitK || 2 * groups >= waves * sms || groups > 65535) return 1;
  const S = Math.min(Math.ceil((waves * sms) / groups), Math.floor(K / MIN_K_PER_SPLIT), MAX_SPLITS);
  return S >= 2 ? S : 1;
}

export interface ThinArgs {
  a: tf.TensorInfo; b: tf.TensorInfo;
  M: number; N: number; K: number;
  transA: boolean; transB: boolean;
  alpha: number;
  outShape: number[];
}

export function thinGemm(g: ThinArgs): tf.TensorInfo {
  // M-thin: swap roles, compute the transpose, store it transposed
  const flip = g.N > THIN_MAX;
  const M = flip ? g.N : g.M, N = flip ? g.M : g.N;
  const [a, b] = flip ? [g.b, g.a] : [g.a, g.b];
  const transA = flip ? !g.transB : g.transA;
  const transB = flip ? !g.transA : g.transB;
  const readA = transA ? 'A[k * P.M + row]' : 'A[row * P.K + k]';
  const readB = (n: number) => transB ? `B[${n}u * P.K + k]` : `B[k * ${N}u + ${n}u]`;
  const groups = Math.ceil(M / ROWS);
  const S = thinSplits(groups, g.K);
  const split = S > 1;
  const store = split ? `C[(w3.y * P.M + orow) * ${N}u + n]` : flip ? `C[n * P.M + orow]` : `C[orow * ${N}u + n]`;
  const acc = Array.from({ length: N }, (_, n) => n);
  const chunk = Math.ceil(g.K / S);
  const out = dispatch({
    key: `thin_gemm_${N}_${+transA}${+transB}${+flip}${split ? '_split' : ''}`,
    outputs: [{ name: 'C' }],
    inputs: [{ name: 'A' }, { name: 'B' }],
    body: () => `
var<workgroup> red : array<f32, ${ROWS * LANES * N}>;
@compute @workgroup_size(${ROWS * LANES}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let tid = l3.x;
  // consecutive threads walk the big operand's contiguous dimension
  let r = ${transA ? `tid % ${ROWS}u` : `tid / ${LANES}u`};
  let lane = ${transA ? `tid / ${ROWS}u` : `tid % ${LANES}u`};
  let row0 = ${split ? 'w3.x' : '(w3.y * n3.x + w3.x)'} * ${ROWS}u;
  let row = row0 + r;
  ${acc.map((n) => `var acc${n} = 0.0;`).join(' ')}
  if (row < P.M) {
    let kBegin = ${split ? 'w3.y * P.chunk' : '0u'};
    let kEnd = ${split ? 'min(P.K, (w3.y + 1u) * P.chunk)' : 'P.K'};
    for (var k = kBegin + lane; k < kEnd; k += ${LANES}u) {
      let av = ${readA};
      ${acc.map((n) => `acc${n} = fma(av, ${readB(n)}, acc${n});`).join('\n      ')}
    }
  }
  let slot = (r * ${LANES}u + lane) * ${N}u;
  ${acc.map((n) => `red[slot + ${n}u] = acc${n};`).join(' ')}
  workgroupBarrier();
  if (tid < ${ROWS * N}u) {
    let r2 = tid / ${N}u;
    let n = tid % ${N}u;
    var s = 0.0;
    for (var l = 0u; l < ${LANES}u; l++) { s += red[(r2 * ${LANES}u + l) * ${N}u + n]; }
    let orow = row0 + r2;
    if (orow < P.M) { ${store} = s${split ? '' : ' * P.alpha'}; }
  }
}`,
  }, [a, b], [{ shape: split ? [S, M, N] : g.outShape }],
  [['M', 'u32', M], ['K', 'u32', g.K], ['alpha', 'f32', g.alpha], ...(split ? [['chunk', 'u32', chunk] as ['chunk', 'u32', number]] : [])],
  split ? [groups, S, 1] : grid1d(groups))[0];
  if (!split) return out;
  const c = sumSplits(out, S, M, N, flip, g.alpha, g.outShape);
  tf.backend().disposeData(out.dataId);
  return c;
}

/** C = alpha · Σ_s partials[s] ([S, M, N]), stored [M, N] or, for a flipped product, [N, M] */
function sumSplits(partials: tf.TensorInfo, S: number, M: number, N: number, flip: boolean, alpha: number, outShape: number[]): tf.TensorInfo {
  return dispatch({
    key: `thin_gemm_sum_${N}_${+flip}`,
    outputs: [{ name: 'C' }],
    inputs: [{ name: 'Pt' }],
    body: () => `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let i = (w3.y * n3.x + w3.x) * 256u + l3.x;
  if (i >= P.M * ${N}u) { return; }
  var s = 0.0;
  for (var z = 0u; z < P.S; z++) { s += Pt[z * P.M * ${N}u + i]; }
  let row = i / ${N}u;
  let n = i % ${N}u;
  ${flip ? 'C[n * P.M + row]' : 'C[i]'} = s * P.alpha;
}`,
  }, [partials], [{ shape: outShape }], [['M', 'u32', M], ['S', 'u32', S], ['alpha', 'f32', alpha]], grid1d(Math.ceil((M * N) / 256)))[0];
}
