/**
 * Attention's forward in one kernel, flash style: no T×T matrix in memory.
 *
 * attention.ts's forward is three launches (Z = scale·QKᵀ, the masked
 * softmax, O = PV) with two T×T tensors written and read back in between;
 * at notebook scale that is 3 of a layer's ~30 dispatches, and each a pass
 * over B·H·T² floats. Here a workgroup takes 64 query rows of one (batch,
 * head), walks the keys in blocks of 32 staged in shared memory, and keeps
 * per row a running max, a running sum and the output row in registers
 * (online softmax), two threads a row by default, each over half of every
 * block, their partial states merged at the end (FlashAttention-2's split of
 * the key loop, inside one workgroup); it writes O and the row log-sum-exp, the same two
 * outputs as before, so the backward (which recomputes from the inputs and
 * the LSE) is unchanged. Causal: key blocks wholly after a query block are
 * skipped; their weights are exp(−1e9 − m) = 0 exactly in float32, as in the
 * reference's additive −1e9 bias (every row has itself as an unmasked key).
 *
 * Scores are (q·k)·scale + bias as the reference's GEMM and bias form them;
 * only the softmax's summation order differs. Head dims up to 64, a multiple
 * of 4 (q and o live in registers as vec4s); others keep the three launches.
 * SHARELORA_WEBGPU_FLASH_ATTENTION=0 keeps them always.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { dispatch, webgpuBackend } from './dispatch.js';
import { ATTENTION_BIAS, vec4At as rd } from './rows.js';

const BQ = 64, BKV = 32, MAX_D = 64;

export interface FlashShape { B: number; T: number; H: number; D: number; rep: number; causal: boolean; scale: number; rows?: boolean }

/** a token-major output of `width` columns, shaped as the inputs came: [B·T, width] rows or [B, T, width] */
export const tokenShape = (s: Pick<FlashShape, 'B' | 'T' | 'rows'>, width: number): number[] => s.rows ? [s.B * s.T, width] : [s.B, s.T, width];
export interface FlashSrc { t: tf.TensorInfo; ld: number; off: number }

export function flashSupported(s: FlashShape): boolean {
  return flags.webgpuFlashAttention && s.D % 4 === 0 && s.D <= MAX_D;
}

/** O [B, T, H·D] and LSE [B·H·T] (row (b·H + h)·T + i), as attention.ts's forward returns them. */
export function flashForward(src: { q: FlashSrc; k: FlashSrc; v: FlashSrc }, keyMask: tf.TensorInfo | undefined, s: FlashShape): tf.TensorInfo[] {
  const D4 = s.D / 4;
  const vecs = Array.from({ length: D4 }, (_, c) => c);
  const masked = !!keyMask;
  const sameSrc = src.q.t === src.k.t && src.k.t === src.v.t;
  // one binding when q, k, v are column blocks of GPT-2's packed [B, T, 3C]
  const inputs = sameSrc ? [src.q.t] : [src.q.t, src.k.t, src.v.t];
  const inDecl: Array<{ name: string; type?: string }> = sameSrc ? [{ name: 'X' }] : [{ name: 'Xq' }, { name: 'Xk' }, { name: 'Xv' }];
  if (keyMask) { inputs.push(keyMask); inDecl.push({ name: 'KM', type: 'i32' }); }
  const Q = sameSrc ? 'X' : 'Xq', K = sameSrc ? 'X' : 'Xk', V = sameSrc ? 'X' : 'Xv';
  const be = webgpuBackend();
  const o = be.makeTensorInfo(tokenShape(s, s.H * s.D), 'float32');
  const lse = be.makeTensorInfo([s.B * s.H * s.T], 'float32');
  // S threads a query row, each walking its slice of every staged key block with its own running max, sum and
  // output; the slices meet at the end. One thread a row gave B·H·T threads (24,576 at GPT-2 small, ~190 an SM
  // on an H100), each a serial walk over every key: too few to hide the latency of its dependent chain.
  // S (SHARELORA_WEBGPU_FLASH_PARTS, default 2) at every head dim: q and o are 2·D floats a thread, and 128 threads a
  // workgroup at D = 64 already hold 16K registers; 1 is the serial walk
  const S = flags.webgpuFlashParts, WG = BQ * S, per = BKV / S;
  // the parts' outputs meet through the staging memory (BQ rows of D4 vec4s are its 2·BKV·D4), one part at a time
  const via = (c: number) => `KV[row * ${D4}u + ${c}u]`;
  // SHARELORA_WEBGPU_FLASH_BLOCK=1: the part's keys of a staged block scored first (independent dot products the
  // GPU can overlap), then one rescale of (l, o) to the block's max instead of one a key (FlashAttention-2's order)
  // (blocks of at most 16 keys a thread: one part's 32 written out made a shader lavapipe took minutes to compile)
  const BLOCK = flags.webgpuFlashBlock && per <= 16;
  const keys = Array.from({ length: per }, (_, t) => t);
  const blockWalk = `let jb = part * ${per}u;
    ${keys.map((t) => `var s${t} = -3.0e38;
    if (j0 + jb + ${t}u < kEnd) {
      var d${t} = vec4<f32>(0.0);
      ${vecs.map((c) => `d${t} = fma(q${c}, KV[(jb + ${t}u) * ${D4}u + ${c}u], d${t});`).join(' ')}
      s${t} = (d${t}.x + d${t}.y + d${t}.z + d${t}.w) * P.scale + biasAt(b, i, j0 + jb + ${t}u);
    }`).join('\n    ')}
    let mb = max(m, ${keys.reduce((acc, t) => (t === 0 ? 's0' : `max(${acc}, s${t})`), '')});
    let cr = exp(m - mb);
    l = l * cr;
    ${vecs.map((c) => `o${c} = o${c} * cr;`).join(' ')}
    ${keys.map((t) => `{
      let p = select(0.0, exp(s${t} - mb), j0 + jb + ${t}u < kEnd);
      l = l + p;
      ${vecs.map((c) => `o${c} = fma(vec4<f32>(p), KV[${BKV * D4}u + (jb + ${t}u) * ${D4}u + ${c}u], o${c});`).join(' ')}
    }`).join('\n    ')}
    m = mb;`;
  return dispatch({
    key: `attn_flash_${s.D}_${S}${BLOCK ? 'b' : ''}_${+s.causal}${+masked}${+sameSrc}`,
    outputs: [{ name: 'O' }, { name: 'LSE' }],
    inputs: inDecl,
    body: () => `
// the key block at KV[0…], the value block at KV[${BKV * D4}…]
var<workgroup> KV : array<vec4<f32>, ${2 * BKV * D4}>;
${ATTENTION_BIAS(s.causal, masked)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let lid = l3.x;
  let row = lid % ${BQ}u; let part = lid / ${BQ}u;
  let zh = w3.y;
  let b = zh / P.H; let h = zh % P.H; let hk = h / P.rep;
  let i = w3.x * ${BQ}u + row;
  let valid = i < P.T;
  let qb = b * P.T * P.ldq + P.offq + h * ${s.D}u + min(i, P.T - 1u) * P.ldq;
  let kb = b * P.T * P.ldk + P.offk + hk * ${s.D}u;
  let vb = b * P.T * P.ldv + P.offv + hk * ${s.D}u;
  ${vecs.map((c) => `let q${c} = ${rd(Q, `qb + ${4 * c}u`)};`).join('\n  ')}
  ${vecs.map((c) => `var o${c} = vec4<f32>(0.0);`).join(' ')}
  var m = -3.0e38;
  var l = 0.0;
  let kEnd = ${s.causal ? `min(P.T, (w3.x + 1u) * ${BQ}u)` : 'P.T'};
  for (var j0 = 0u; j0 < kEnd; j0 += ${BKV}u) {
    for (var e = lid; e < ${BKV * D4}u; e += ${WG}u) {
      let j = min(j0 + e / ${D4}u, P.T - 1u);
      let c = (e % ${D4}u) * 4u;
      KV[e] = ${rd(K, 'kb + j * P.ldk + c')};
      KV[${BKV * D4}u + e] = ${rd(V, 'vb + j * P.ldv + c')};
    }
    workgroupBarrier();
    ${BLOCK ? blockWalk : `// a constant trip count with the end as a branch: Tint's range analysis then proves every KV index in
    // range and adds no clamps to this loop (bench/shader-audit.ts; with \`jj < n\` it added 32 a key)
    for (var t = 0u; t < ${per}u; t++) {
      let jj = part * ${per}u + t;
      let j = j0 + jj;
      if (j >= kEnd) { break; }
      var dotv = vec4<f32>(0.0);
      ${vecs.map((c) => `dotv = fma(q${c}, KV[jj * ${D4}u + ${c}u], dotv);`).join('\n      ')}
      let sc = (dotv.x + dotv.y + dotv.z + dotv.w) * P.scale + biasAt(b, i, j);
      let mn = max(m, sc);
      let cr = exp(m - mn);
      let p = exp(sc - mn);
      l = l * cr + p;
      ${vecs.map((c) => `o${c} = fma(vec4<f32>(p), KV[${BKV * D4}u + jj * ${D4}u + ${c}u], o${c} * cr);`).join('\n      ')}
      m = mn;
    }`}
    workgroupBarrier();
  }${S > 1 ? `
  // part 0 takes in each other part's (m, l, o), rescaled to the larger max
  for (var sp = 1u; sp < ${S}u; sp++) {
    if (part == sp) { KV[row * ${D4}u] = vec4<f32>(m, l, 0.0, 0.0); }
    workgroupBarrier();
    var ca = 1.0; var cb = 0.0;
    if (part == 0u) {
      let ml = KV[row * ${D4}u];
      let mn = max(m, ml.x);
      ca = exp(m - mn); cb = exp(ml.x - mn);
      l = l * ca + ml.y * cb;
      m = mn;
    }
    workgroupBarrier();
    if (part == sp) { ${vecs.map((c) => `${via(c)} = o${c};`).join(' ')} }
    workgroupBarrier();
    if (part == 0u) { ${vecs.map((c) => `o${c} = o${c} * ca + ${via(c)} * cb;`).join(' ')} }
    workgroupBarrier();
  }` : ''}
  if (valid && part == 0u) {
    let inv = 1.0 / l;
    let ob = (b * P.T + i) * P.H * ${s.D}u + h * ${s.D}u;
    ${vecs.map((c) => `O[ob + ${4 * c}u] = o${c}.x * inv; O[ob + ${4 * c + 1}u] = o${c}.y * inv; O[ob + ${4 * c + 2}u] = o${c}.z * inv; O[ob + ${4 * c + 3}u] = o${c}.w * inv;`).join('\n    ')}
    LSE[zh * P.T + i] = m + log(l);
  }
}`,
  }, inputs, [o, lse], [
    ['T', 'u32', s.T], ['H', 'u32', s.H], ['rep', 'u32', s.rep], ['scale', 'f32', s.scale],
    ['ldq', 'u32', src.q.ld], ['offq', 'u32', src.q.off], ['ldk', 'u32', src.k.ld], ['offk', 'u32', src.k.off], ['ldv', 'u32', src.v.ld], ['offv', 'u32', src.v.off],
  ], [Math.ceil(s.T / BQ), s.B * s.H, 1]);
}
