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
export function thinSplits(groups: number, K: number, sms = flags.gpuSms, waves = flags.gemmThinWaves, minK = MIN_K_PER_SPLIT): number {
  if (!flags.gemmSplitK || 2 * groups >= waves * sms || groups > 65535) return 1;
  const S = Math.min(Math.ceil((waves * sms) / groups), Math.floor(K / minK), MAX_SPLITS);
  return S >= 2 ? S : 1;
}

export interface ThinArgs {
  a: tf.TensorInfo; b: tf.TensorInfo;
  M: number; N: number; K: number;
  transA: boolean; transB: boolean;
  alpha: number;
  outShape: number[];
}

/**
 * Both thin kernels' frame: 16 row slots × 16 K lanes a workgroup, consecutive threads along the big operand's
 * contiguous dimension (K lanes where A is [M, K], row slots where A is [K, M]); `rows` rows of the long side a workgroup
 */
const frame = (transA: boolean, split: boolean, rows: number, N: number): string => `
var<workgroup> red : array<f32, ${ROWS * LANES * N}>;
@compute @workgroup_size(${ROWS * LANES}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let tid = l3.x;
  // consecutive threads walk the big operand's contiguous dimension
  let r = ${transA ? `tid % ${ROWS}u` : `tid / ${LANES}u`};
  let lane = ${transA ? `tid / ${ROWS}u` : `tid % ${LANES}u`};
  let row0 = ${split ? 'w3.x' : '(w3.y * n3.x + w3.x)'} * ${rows}u;`;

/**
 * With each thread's sums `accs` (one a column): the 16 lanes of row slot r2 added and stored at output row `orow`
 * (an expression of r2): into the [S, M, N] partials (split: slice w3.y), else C as [M, N] or, flipped, [N, M]
 */
function laneSum(accs: string[], orow: string, o: { N: number; split: boolean; flip: boolean }): string {
  const { N, split, flip } = o;
  const store = split ? `C[(w3.y * P.M + orow) * ${N}u + n]` : flip ? `C[n * P.M + orow]` : `C[orow * ${N}u + n]`;
  return `{
    let slot = (r * ${LANES}u + lane) * ${N}u;
    ${accs.map((acc, n) => `red[slot + ${n}u] = ${acc};`).join(' ')}
    workgroupBarrier();
    if (tid < ${ROWS * N}u) {
      let r2 = tid / ${N}u;
      let n = tid % ${N}u;
      var s = 0.0;
      for (var l = 0u; l < ${LANES}u; l++) { s += red[(r2 * ${LANES}u + l) * ${N}u + n]; }
      let orow = ${orow};
      if (orow < P.M) { ${store} = s${split ? '' : ' * P.alpha'}; }
    }
  }`;
}

/** a split product's partials summed into its output (sumSplits) and freed; an unsplit product's output as it is */
function finish(out: tf.TensorInfo, S: number, M: number, N: number, flip: boolean, g: ThinArgs): tf.TensorInfo {
  if (S === 1) return out;
  const c = sumSplits(out, S, M, N, flip, g.alpha, g.outShape);
  tf.backend().disposeData(out.dataId);
  return c;
}

export function thinGemm(g: ThinArgs): tf.TensorInfo {
  // M-thin: swap roles, compute the transpose, store it transposed
  const flip = g.N > THIN_MAX;
  const M = flip ? g.N : g.M, N = flip ? g.M : g.N;
  const [a, b] = flip ? [g.b, g.a] : [g.a, g.b];
  const transA = flip ? !g.transB : g.transA;
  const transB = flip ? !g.transA : g.transB;
  if (flags.webgpuThinBlock && g.K % 4 === 0 && (!transA || M % 4 === 0)) return thinBlocked(g, { M, N, a, b, transA, transB, flip });
  const readA = transA ? 'A[k * P.M + row]' : 'A[row * P.K + k]';
  const readB = (n: number) => transB ? `B[${n}u * P.K + k]` : `B[k * ${N}u + ${n}u]`;
  const groups = Math.ceil(M / ROWS);
  const S = thinSplits(groups, g.K);
  const split = S > 1;
  const acc = Array.from({ length: N }, (_, n) => n);
  const chunk = Math.ceil(g.K / S);
  const out = dispatch({
    key: `thin_gemm_${N}_${+transA}${+transB}${+flip}${split ? '_split' : ''}`,
    outputs: [{ name: 'C' }],
    inputs: [{ name: 'A' }, { name: 'B' }],
    body: () => `${frame(transA, split, ROWS, N)}
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
  ${laneSum(acc.map((n) => `acc${n}`), 'row0 + r2', { N, split, flip })}
}`,
  }, [a, b], [{ shape: split ? [S, M, N] : g.outShape }],
  [['M', 'u32', M], ['K', 'u32', g.K], ['alpha', 'f32', g.alpha], ...(split ? [['chunk', 'u32', chunk] as ['chunk', 'u32', number]] : [])],
  split ? [groups, S, 1] : grid1d(groups))[0];
  return finish(out, S, M, N, flip, g);
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

/**
 * SHARELORA_WEBGPU_THIN_BLOCK=1 (opt-in until measured, bench/NOTES.md entry 41): the same products with 4 rows of the
 * long side a thread and 4 of K an iteration, A and B read as vec4. The kernel above reads, for every element of the
 * big operand, all N ≤ 8 values of B at that k as scalars: 9 loads for 8 FMAs, B's re-read for each of a workgroup's
 * 16 rows; here a thread's 4 rows share each B value it loads (1 vec4 of A a row and N/4–N vec4 of B for 4·4·N FMAs).
 * A workgroup is 16 row slots × 16 K lanes as before and covers 64 rows: rows r + 16q (A as [M, K]: a lane's vec4 runs
 * along K) or 4r + q (A as [K, M]: a vec4 runs along M). Needs K a multiple of 4 (and M, where A is [K, M]).
 */
function thinBlocked(g: ThinArgs, o: { M: number; N: number; a: tf.TensorInfo; b: tf.TensorInfo; transA: boolean; transB: boolean; flip: boolean }): tf.TensorInfo {
  const { M, N, transA, transB, flip } = o;
  const ROWS_WG = 64;
  const groups = Math.ceil(M / ROWS_WG);
  // a quarter of the row groups the kernel above makes, each thread 4 rows: slices of half its minimum K keep about
  // as many workgroups in flight (GPT-2 small's g = dy·B: 32 groups × 18 slices of 128, against 128 × 9 of 256)
  const S0 = thinSplits(groups, g.K, flags.gpuSms, flags.gemmThinWaves, MIN_K_PER_SPLIT / 2);
  // K-slices of a multiple of 4, so a lane's 4 values of K are all inside a slice or all outside it
  const chunk = Math.ceil(g.K / S0 / 4) * 4;
  const S = Math.ceil(g.K / chunk);
  const split = S > 1;
  const bVec = transB || N % 4 === 0;
  const Q = [0, 1, 2, 3];
  const ns = Array.from({ length: N }, (_, n) => n);
  // A: a${q} (row q's 4 values of K) or a${k} (4 rows at K row k)
  const aLoads = transA
    ? Q.map((k) => `let a${k} = A[((k + ${k}u) * P.M + m) / 4u];`).join('\n      ')
    : Q.map((q) => `var a${q} = vec4<f32>(0.0); if (row0 + r + ${16 * q}u < P.M) { a${q} = A[((row0 + r + ${16 * q}u) * P.K + k) / 4u]; }`).join('\n      ');
  const aAt = (q: number, k: number) => (transA ? `a${k}[${q}]` : `a${q}[${k}]`);
  // B at (k + kk, n)
  const bLoads = transB
    ? ns.map((n) => `let b${n} = B[(${n}u * P.K + k) / 4u];`).join('\n      ')
    : bVec
      ? Q.flatMap((kk) => Array.from({ length: N / 4 }, (_, h) => `let b${kk}_${h} = B[((k + ${kk}u) * ${N}u) / 4u + ${h}u];`)).join('\n      ')
      : Q.flatMap((kk) => ns.map((n) => `let b${kk}_${n} = B[(k + ${kk}u) * ${N}u + ${n}u];`)).join('\n      ');
  const bAt = (kk: number, n: number) => (transB ? `b${n}[${kk}]` : bVec ? `b${kk}_${n >> 2}[${n & 3}]` : `b${kk}_${n}`);
  const fmas = Q.flatMap((q) => Q.flatMap((kk) => ns.map((n) => `acc${q}_${n} = fma(${aAt(q, kk)}, ${bAt(kk, n)}, acc${q}_${n});`))).join('\n      ');
  // the output row of row slot r2's q-th row
  const orowOf = (q: number) => (transA ? `row0 + 4u * r2 + ${q}u` : `row0 + r2 + ${16 * q}u`);
  const out = dispatch({
    key: `thin_blk_${N}_${+transA}${+transB}${+flip}${split ? '_split' : ''}`,
    outputs: [{ name: 'C' }],
    inputs: [{ name: 'A', type: 'vec4<f32>' }, { name: 'B', type: bVec ? 'vec4<f32>' : 'f32' }],
    body: () => `${frame(transA, split, ROWS_WG, N)}
  let z = ${split ? 'w3.y' : '0u'};
  ${Q.flatMap((q) => ns.map((n) => `var acc${q}_${n} = 0.0;`)).join(' ')}
  let kBegin = z * P.chunk;
  let kEnd = min(P.K, kBegin + P.chunk);${transA ? `
  let m = row0 + 4u * r;
  if (m < P.M) {` : `
  {`}
    for (var k = kBegin + 4u * lane; k < kEnd; k += ${4 * LANES}u) {
      ${aLoads}
      ${bLoads}
      ${fmas}
    }
  }
  // the 16 lanes' sums, one of the thread's 4 rows at a time (red is reused: a barrier between rounds)
  ${Q.map((q) => laneSum(ns.map((n) => `acc${q}_${n}`), orowOf(q), { N, split, flip })).join('\n  workgroupBarrier();\n  ')}
}`,
  }, [o.a, o.b], [{ shape: split ? [S, M, N] : g.outShape }],
  [['M', 'u32', M], ['K', 'u32', g.K], ['alpha', 'f32', g.alpha], ['chunk', 'u32', chunk]],
  split ? [groups, S, 1] : grid1d(groups))[0];
  return finish(out, S, M, N, flip, g);
}
