/**
 * Attention straight from the projections' token-major layout.
 *
 * q, k, v arrive as [B, T, heads·D] (or GPT-2's fused c_attn output
 * [B, T, 3C], read in place at column offsets 0, C, 2C), and the output
 * leaves as [B, T, H·D]: the GEMMs address head z of batch b through
 * strides, so the split, the four head transposes and their gradients
 * (≈ 12 dispatches a layer, each a full pass over q/k/v) never run.
 *
 * Forward: one flash-style kernel (flash.ts) where the head dim allows, else
 * Z = scale·QKᵀ -> masked softmax (P, row log-sum-exp) -> O = PV.
 * Only the inputs and the LSE are kept; the backward recomputes Z, rebuilds
 * P from the LSE and forms dS = scale·P∘(dP − rowsum(P∘dP)) in one row
 * kernel, then writes dQ, dK, dV (into one [B, T, 3C] gradient when the
 * input was packed). The T×T tensors live only inside one kernel call.
 * With SHARELORA_WEBGPU_FLASH_BACKWARD=1, where the flash forward ran, the
 * backward is two flash-style kernels instead (flash-backward.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dispatch, grid1d, webgpuBackend, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { flashForward, flashSupported, tokenShape } from './flash.js';
import { flashBackward, flashBackwardSupported } from './flash-backward.js';
import { gemm, tileNamed, type Causal, type GemmArgs, type GemmTile } from './gemm.js';
import { flags } from '../flags.js';
import { ATTENTION_BIAS, reducers, ROW_HEADER, rowWG } from './rows.js';

interface Shape { B: number; T: number; H: number; Hkv: number; D: number; rep: number; packed: boolean; causal: boolean; scale: number; rows: boolean }
/** where one of q/k/v lives: its tensor, row stride, column offset */
interface Src { t: tf.TensorInfo; ld: number; off: number }

function shapeOf(inputs: KernelInputs, attrs: KernelAttrs): Shape {
  const packed = !!inputs.qkv;
  const x = packed ? inputs.qkv : inputs.q;
  // [B·T, W] rows (attrs.seq = T) are laid out as [B, T, W]: only the shapes of the outputs differ
  const rows = x.shape.length === 2;
  const T = rows ? attrs.seq as number : x.shape[1];
  const B = rows ? x.shape[0] / T : x.shape[0];
  const W = x.shape[x.shape.length - 1];
  const H = attrs.heads as number, Hkv = (attrs.kvHeads as number) ?? H;
  const D = packed ? W / (3 * H) : W / H;
  return { B, T, H, Hkv, D, rep: H / Hkv, packed, causal: !!attrs.causal, scale: attrs.scale as number, rows };
}

function sources(inputs: KernelInputs, s: Shape): { q: Src; k: Src; v: Src } {
  if (s.packed) {
    const C = s.H * s.D;
    return { q: { t: inputs.qkv, ld: 3 * C, off: 0 }, k: { t: inputs.qkv, ld: 3 * C, off: C }, v: { t: inputs.qkv, ld: 3 * C, off: 2 * C } };
  }
  return { q: { t: inputs.q, ld: s.H * s.D, off: 0 }, k: { t: inputs.k, ld: s.Hkv * s.D, off: 0 }, v: { t: inputs.v, ld: s.Hkv * s.D, off: 0 } };
}

// operand descriptors for batch z = b·H + h ([T, D] per head)
const asA = (x: Src, s: Shape): Partial<GemmArgs> => ({ a: x.t, lda: x.ld, strideA: s.T * x.ld, aH: s.H, hsA: s.D, oA: x.off });
/** a query-head source as B (bRep 1) or a kv source read by query head z (bRep = rep) */
const asB = (x: Src, s: Shape, rep: number): Partial<GemmArgs> => ({ b: x.t, ldb: x.ld, strideB: s.T * x.ld, bH: s.H, bRep: rep, hsB: s.D, oB: x.off });
/** write head z's [T, D] block into a token-major target */
const asC = (t: tf.TensorInfo, ld: number, off: number, s: Shape): Partial<GemmArgs> => ({ into: t, ldc: ld, sC: s.T * ld, cH: s.H, hsC: s.D, oC: off });

function scores(src: { q: Src; k: Src }, s: Shape, causal?: Causal, tile?: GemmTile): tf.TensorInfo {
  return gemm({ ...asA(src.q, s), ...asB(src.k, s, s.rep), M: s.T, N: s.T, K: s.D, transA: false, transB: true, batch: s.B * s.H, alpha: s.scale, causal, tile, outShape: [s.B * s.H, s.T, s.T] } as GemmArgs);
}

/** Both softmax row kernels: reducers, the bias, and row = (batch·head, query i) over a T-long score row at base. */
function rowPrelude(WG: number, masked: boolean, causal: boolean): string {
  return `${reducers(WG)}
${ATTENTION_BIAS(causal, masked)}
${ROW_HEADER(WG)}
  let i = row % P.T;
  let b = row / P.T / P.H;
  let base = row * P.T;`;
}

function softmaxRows(z: tf.TensorInfo, km: tf.TensorInfo | undefined, s: Shape): tf.TensorInfo[] {
  const rows = s.B * s.H * s.T;
  const WG = rowWG(s.T);
  return dispatch({
    key: `attn_sm_fwd_${WG}_${+s.causal}${+!!km}`,
    outputs: [{ name: 'Pr' }, { name: 'LSE' }],
    inputs: km ? [{ name: 'Z' }, { name: 'KM', type: 'i32' }] : [{ name: 'Z' }],
    body: () => `${rowPrelude(WG, !!km, s.causal)}
  var m = -3.0e38;
  for (var j = lid; j < P.T; j += ${WG}u) { m = max(m, Z[base + j] + biasAt(b, i, j)); }
  m = wgMax(m, lid);
  var s = 0.0;
  for (var j = lid; j < P.T; j += ${WG}u) { s += exp(Z[base + j] + biasAt(b, i, j) - m); }
  s = wgSum(s, lid);
  let inv = 1.0 / s;
  for (var j = lid; j < P.T; j += ${WG}u) { Pr[base + j] = exp(Z[base + j] + biasAt(b, i, j) - m) * inv; }
  if (lid == 0u) { LSE[row] = m + log(s); }
}`,
  }, km ? [z, km] : [z], [{ shape: z.shape }, { shape: [rows] }], [['rows', 'u32', rows], ['T', 'u32', s.T], ['H', 'u32', s.H]], grid1d(rows));
}

/** From recomputed Z, dP = dO·Vᵀ and the saved LSE: P again, and dS = scale·P∘(dP − rowsum(P∘dP)). */
function softmaxRowsGrad(z: tf.TensorInfo, dp: tf.TensorInfo, lse: tf.TensorInfo, km: tf.TensorInfo | undefined, s: Shape, trim: boolean): tf.TensorInfo[] {
  const rows = s.B * s.H * s.T;
  const WG = rowWG(s.T);
  const ins = km ? [z, dp, lse, km] : [z, dp, lse];
  // trim (causal, SHARELORA_WEBGPU_CAUSAL_SKIP): Z and dP past the diagonal are not read (their GEMMs left out the tiles
  // wholly past it), and P and dS there are written as zeros, which the trimmed dQ/dK/dV products still read near it
  const jEnd = trim ? 'i + 1u' : 'P.T';
  return dispatch({
    key: `attn_sm_bwd_${WG}_${+s.causal}${+!!km}${trim ? '_trim' : ''}`,
    outputs: [{ name: 'DS' }, { name: 'Pr' }],
    inputs: [{ name: 'Z' }, { name: 'DP' }, { name: 'LSE' }, ...(km ? [{ name: 'KM', type: 'i32' }] : [])],
    body: () => `${rowPrelude(WG, !!km, s.causal)}
  let l = LSE[row];
  let jEnd = ${jEnd};
  var d = 0.0;
  for (var j = lid; j < jEnd; j += ${WG}u) {
    let p = exp(Z[base + j] + biasAt(b, i, j) - l);
    Pr[base + j] = p;
    d += p * DP[base + j];
  }
  d = wgSum(d, lid);
  for (var j = lid; j < jEnd; j += ${WG}u) {
    DS[base + j] = P.scale * Pr[base + j] * (DP[base + j] - d);
  }${trim ? `
  for (var j = jEnd + lid; j < P.T; j += ${WG}u) { DS[base + j] = 0.0; Pr[base + j] = 0.0; }` : ''}
}`,
  }, ins, [{ shape: z.shape }, { shape: z.shape }], [['rows', 'u32', rows], ['T', 'u32', s.T], ['H', 'u32', s.H], ['scale', 'f32', s.scale]], grid1d(rows));
}

/** out[b, t, g, d] = Σ_r x[b, t, g·rep + r, d]: per-query-head dK/dV summed onto their kv head (GQA). */
function sumGroups(x: tf.TensorInfo, s: Shape): tf.TensorInfo {
  const n = s.B * s.T * s.Hkv * s.D;
  return dispatch({
    key: 'attn_sum_groups',
    outputs: [{ name: 'Y' }],
    inputs: [{ name: 'X' }],
    body: () => `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let i = (w3.y * n3.x + w3.x) * 256u + l3.x;
  if (i >= P.n) { return; }
  let d = i % P.D;
  let g = (i / P.D) % P.Hkv;
  let bt = i / (P.D * P.Hkv);
  var acc = 0.0;
  for (var r = 0u; r < P.rep; r++) { acc += X[(bt * P.Hkv * P.rep + g * P.rep + r) * P.D + d]; }
  Y[i] = acc;
}`,
  }, [x], [{ shape: tokenShape(s, s.Hkv * s.D) }], [['n', 'u32', n], ['D', 'u32', s.D], ['Hkv', 'u32', s.Hkv], ['rep', 'u32', s.rep]], grid1d(Math.ceil(n / 256)))[0];
}

/** backward calls that left out the causal products' masked work (the tests check it ran) */
export const causalSkipStats = { calls: 0 };

const free = (...ts: tf.TensorInfo[]) => { const be = webgpuBackend(); for (const t of ts) be.disposeData(t.dataId); };

/** inputs {qkv} or {q, k, v}, optional keyMask (int32 [B, T]); outputs [O [B, T, H·D], LSE [B·H·T]] */
export function attentionForward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const s = shapeOf(inputs, attrs);
  const src = sources(inputs, s);
  if (flashSupported(s)) return flashForward(src, inputs.keyMask, s);
  const be = webgpuBackend();
  const z = scores(src, s);
  const [p, lse] = softmaxRows(z, inputs.keyMask, s);
  const o = be.makeTensorInfo(tokenShape(s, s.H * s.D), 'float32');
  gemm({ a: p, strideA: s.T * s.T, ...asB(src.v, s, s.rep), ...asC(o, s.H * s.D, 0, s), M: s.T, N: s.D, K: s.T, transA: false, transB: false, batch: s.B * s.H, outShape: o.shape } as GemmArgs);
  free(z, p);
  return [o, lse];
}

/** inputs as the forward plus lse and dy [B, T, H·D]; outputs [dqkv] (packed) or [dq, dk, dv] */
export function attentionBackward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const s = shapeOf(inputs, attrs);
  const src = sources(inputs, s);
  if (flashBackwardSupported(s)) return flashBackward(src, inputs.dy, inputs.lse, inputs.keyMask, s);
  const be = webgpuBackend();
  const HD = s.H * s.D;
  const dO: Src = { t: inputs.dy, ld: HD, off: 0 };
  const BH = s.B * s.H;
  // causal: the T × T products leave out what lies wholly past the diagonal (about a quarter of their work at T = 256
  // on 128-row tiles: bench/NOTES.md entry 36); the results are the same sums in the same order
  const trim = s.causal && flags.webgpuCausalSkip;
  if (trim) causalSkipStats.calls++;
  // causal: the backward's five products on 64-row tiles, where the causal forms leave out 3/8 of the work at T = 256
  // instead of 1/4 (GPT-2 small on the H100: 3.54 → 3.10 ms a step; bench/NOTES.md "37, measured")
  const at = flags.webgpuAttentionTile;
  const tile = at === '64x64t4' || (at === 'auto' && trim) ? tileNamed('64x64t4', 'SHARELORA_WEBGPU_ATTENTION_TILE') : undefined;
  const z = scores(src, s, trim ? 'skipAbove' : undefined, tile);
  const dp = gemm({ ...asA(dO, s), ...asB(src.v, s, s.rep), M: s.T, N: s.T, K: s.D, transA: false, transB: true, batch: BH, causal: trim ? 'skipAbove' : undefined, tile, outShape: [BH, s.T, s.T] } as GemmArgs);
  const [ds, p] = softmaxRowsGrad(z, dp, inputs.lse, inputs.keyMask, s, trim);
  free(z, dp);
  const mmArgs = { M: s.T, N: s.D, K: s.T, batch: BH, strideA: s.T * s.T, transB: false, tile };
  // dQ = dS·K (K read per query head through the kv mapping): query i takes keys j ≤ i
  const dQ = (into: tf.TensorInfo, ld: number, off: number) =>
    gemm({ a: ds, ...asB(src.k, s, s.rep), ...asC(into, ld, off, s), ...mmArgs, transA: false, causal: trim ? 'kBelow' : undefined, outShape: into.shape } as GemmArgs);
  // dK = dSᵀ·Q and dV = Pᵀ·dO, per query head: key j takes queries i ≥ j
  const dKV = (a: tf.TensorInfo, x: Src, into: tf.TensorInfo, ld: number, off: number) =>
    gemm({ a, ...asB(x, s, 1), ...asC(into, ld, off, s), ...mmArgs, transA: true, causal: trim ? 'kAbove' : undefined, outShape: into.shape } as GemmArgs);
  let outs: tf.TensorInfo[];
  if (s.packed) {
    const g = be.makeTensorInfo(tokenShape(s, 3 * HD), 'float32');
    dQ(g, 3 * HD, 0);
    dKV(ds, src.q, g, 3 * HD, HD);
    dKV(p, dO, g, 3 * HD, 2 * HD);
    outs = [g];
  } else {
    const dq = be.makeTensorInfo(tokenShape(s, HD), 'float32');
    dQ(dq, HD, 0);
    const kv = (a: tf.TensorInfo, x: Src) => {
      const full = be.makeTensorInfo(tokenShape(s, HD), 'float32');
      dKV(a, x, full, HD, 0);
      if (s.rep === 1) return full;
      const summed = sumGroups(full, s);
      free(full);
      return summed;
    };
    outs = [dq, kv(ds, src.q), kv(p, dO)];
  }
  free(ds, p);
  return outs;
}
