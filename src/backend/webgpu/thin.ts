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
 */
import type * as tf from '@tensorflow/tfjs-core';
import { dispatch, grid1d } from './dispatch.js';

export const THIN_MAX = 8;
const ROWS = 16, LANES = 16;

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
  const store = flip ? `C[n * P.M + orow]` : `C[orow * ${N}u + n]`;
  const acc = Array.from({ length: N }, (_, n) => n);
  return dispatch({
    key: `thin_gemm_${N}_${+transA}${+transB}${+flip}`,
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
  let row0 = (w3.y * n3.x + w3.x) * ${ROWS}u;
  let row = row0 + r;
  ${acc.map((n) => `var acc${n} = 0.0;`).join(' ')}
  if (row < P.M) {
    for (var k = lane; k < P.K; k += ${LANES}u) {
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
    if (orow < P.M) { ${store} = s * P.alpha; }
  }
}`,
  }, [a, b], [{ shape: g.outShape }], [['M', 'u32', M], ['K', 'u32', g.K], ['alpha', 'f32', g.alpha]], grid1d(Math.ceil(M / ROWS)))[0];
}
