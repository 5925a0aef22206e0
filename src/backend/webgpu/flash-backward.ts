/**
 * Attention's backward in two kernels, FlashAttention-2 style: no T×T tensor
 * in memory. Opt-in (SHARELORA_WEBGPU_FLASH_BACKWARD=1): slower than the six-launch backward on an H100 (bench/NOTES.md, "17 and 18, measured").
 *
 * attention.ts's backward is six launches a layer (scores GEMM, dP GEMM, the
 * softmax-gradient row kernel, then the dQ, dK, dV GEMMs; a seventh and eighth
 * sum GQA heads) with three [B·H, T, T] tensors written and read back. At
 * notebook scale the step is dispatch-bound (bench/NOTES.md entries 10–17),
 * so the count matters as much as the traffic. Here:
 *
 *   1. dQ: a workgroup takes 64 query rows of one (batch, head) and walks the
 *      keys in blocks of 32 in shared memory, as the forward does. P is
 *      rebuilt from q·k and the saved LSE, dP = dO·v. The row term
 *      Δᵢ = rowsum(P∘dP) is not known until the walk ends, so the walk
 *      accumulates Σ p·dp·k, Σ p·k and Δ together and forms
 *      dQ = scale·(Σ p·dp·k − Δ·Σ p·k) at the end: one pass, and O need
 *      not be saved (the op saves only the inputs and the LSE). Δ is written
 *      out, B·H·T floats, for kernel 2.
 *   2. dK, dV: a workgroup takes 64 key rows of one (batch, kv head) and
 *      walks every query head sharing that kv head (GQA: the sum over the
 *      group happens in registers, no per-head partials) and their query
 *      rows in blocks of 32 in shared memory: dV += p·dO, dK += p·(dp − Δ)·q.
 *
 * Causal: the forward (flash.ts) adds key blocks up to the end of a 64-row
 * query block, so a row's softmax covers exactly those keys. Kernel 1 walks
 * the same keys, and kernel 2's 64-key blocks, aligned with the forward's
 * query blocks, start at their own block's first query row, so P here is the
 * forward's P entry for entry (masked entries are exp(−1e9 − lse) = 0 in
 * float32 as in the reference's additive bias). Hence this path runs only
 * where flash.ts ran the forward: head dims ≤ 64, a multiple of 4.
 *
 * In both kernels S threads share a row (4 at D ≤ 32, 2 at D = 64), each
 * taking a slice of every staged block, and their partial sums meet in
 * shared memory at the end (`parts` says why). Registers: 4·D floats a
 * thread (q, dO and two accumulators; k, v, dK, dV), 256 at D = 64, which may
 * spill on NVIDIA; D = 32 (the notebook model) is 128.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { dispatch, webgpuBackend } from './dispatch.js';
import { flashSupported, tokenShape, type FlashShape, type FlashSrc } from './flash.js';
import { ATTENTION_BIAS, vec4At as rd } from './rows.js';

// BR rows a workgroup owns; BS rows of the other side staged per step. BR must
// equal flash.ts's query block (64) for the causal block bounds to match it.
const BR = 64, BS = 32;
/**
 * Threads a row: each takes BS/S of a staged block's rows and the parts are
 * summed at the end. One thread a row gives only B·H·T threads (32,768 at
 * notebook scale, 24,576 at GPT-2 small), far from filling an H100, and each
 * walks a whole row serially; S threads cut that walk S-fold. D = 64 keeps
 * S = 2: 4·D registers a thread leave little room for a 256-thread workgroup.
 */
const parts = (D: number) => D <= 32 ? 4 : 2;

export interface FlashBwdShape extends FlashShape { Hkv: number; packed: boolean }

/** calls since the process started (the test checks this path, not the fallback, ran) */
export const flashBackwardStats = { calls: 0 };

export function flashBackwardSupported(s: FlashBwdShape): boolean {
  return flags.webgpuFlashBackward && flashSupported(s);
}

const wr = (arr: string, base: string, v: string) => `${arr}[${base}] = ${v}.x; ${arr}[${base} + 1u] = ${v}.y; ${arr}[${base} + 2u] = ${v}.z; ${arr}[${base} + 3u] = ${v}.w;`;
const dot = (a: string, b: (c: number) => string, D4: number) =>
  `var ${a}v = vec4<f32>(0.0);\n${Array.from({ length: D4 }, (_, c) => `      ${a}v = fma(${b(c)}, ${a}v);`).join('\n')}\n      let ${a} = ${a}v.x + ${a}v.y + ${a}v.z + ${a}v.w;`;

/**
 * Sum the S parts' register partials into part 0, one part and one vector at a
 * time through the staging memory St (BR·D4 vec4s, the two staged blocks):
 * workgroup memory is at WebGPU's 16 KiB default at D = 64 already.
 */
function combine(S: number, D4: number, vectors: string[], scalar?: string): string {
  const vecs = Array.from({ length: D4 }, (_, c) => c);
  const round = (put: string, add: string) => `
    if (part == s) { ${put} }
    workgroupBarrier();
    if (part == 0u) { ${add} }
    workgroupBarrier();`;
  return S === 1 ? '' : `
  for (var s = 1u; s < ${S}u; s++) {${scalar ? round(`St[row] = vec4<f32>(${scalar}, 0.0, 0.0, 0.0);`, `${scalar} += St[row].x;`) : ''}${vectors.map((v) =>
    round(vecs.map((c) => `St[row * ${D4}u + ${c}u] = ${v}${c};`).join(' '), vecs.map((c) => `${v}${c} += St[row * ${D4}u + ${c}u];`).join(' '))).join('')}
  }`;
}

/**
 * Both kernels' staging of BS rows from row0 (clamped to T): the first
 * source's vec4s at St[0…], the second's at St[BS·D4…]; `c` is the column.
 */
const stage = (D4: number, WG: number, row0: string, first: (row: string) => string, second: (row: string) => string) => `
    for (var x = lid; x < ${BS * D4}u; x += ${WG}u) {
      let r = min(${row0} + x / ${D4}u, P.T - 1u);
      let c = (x % ${D4}u) * 4u;
      St[x] = ${first('r')};
      St[${BS * D4}u + x] = ${second('r')};
    }
    workgroupBarrier();`;

const srcUniforms = (src: { q: FlashSrc; k: FlashSrc; v: FlashSrc }): Array<[string, 'u32', number]> => [
  ['ldq', 'u32', src.q.ld], ['offq', 'u32', src.q.off], ['ldk', 'u32', src.k.ld], ['offk', 'u32', src.k.off], ['ldv', 'u32', src.v.ld], ['offv', 'u32', src.v.off],
];

/**
 * dy [B, T, H·D] and the forward's LSE [B·H·T]; returns [dqkv [B, T, 3C]] when
 * q, k, v are column blocks of one packed tensor, else [dq, dk, dv] in the
 * inputs' widths (H·D, Hkv·D, Hkv·D): attention.ts's backward's outputs.
 */
export function flashBackward(src: { q: FlashSrc; k: FlashSrc; v: FlashSrc }, dy: tf.TensorInfo, lse: tf.TensorInfo, keyMask: tf.TensorInfo | undefined, s: FlashBwdShape): tf.TensorInfo[] {
  flashBackwardStats.calls++;
  const D = s.D, D4 = D / 4;
  const vecs = Array.from({ length: D4 }, (_, c) => c);
  const masked = !!keyMask;
  // one binding when q, k, v are one tensor (packed, or attention(x, x, x)); the outputs follow s.packed alone
  const sameSrc = src.q.t === src.k.t && src.k.t === src.v.t;
  const inputs = sameSrc ? [src.q.t] : [src.q.t, src.k.t, src.v.t];
  const inDecl: Array<{ name: string; type?: string }> = sameSrc ? [{ name: 'X' }] : [{ name: 'Xq' }, { name: 'Xk' }, { name: 'Xv' }];
  inputs.push(dy, lse); inDecl.push({ name: 'DO' }, { name: 'LSE' });
  const Q = sameSrc ? 'X' : 'Xq', K = sameSrc ? 'X' : 'Xk', V = sameSrc ? 'X' : 'Xv';
  const HD = s.H * D, KD = s.Hkv * D;
  const be = webgpuBackend();
  const common: Array<[string, 'u32' | 'f32', number]> = [['T', 'u32', s.T], ['H', 'u32', s.H], ['rep', 'u32', s.rep], ['scale', 'f32', s.scale], ...srcUniforms(src)];
  const S = parts(D), WG = BR * S, per = BS / S;
  const variant = `${D}_${S}_${+s.causal}${+masked}${+sameSrc}`;

  // the packed gradient is one [B, T, 3C] tensor: dQ, dK, dV are its column blocks, as the inputs were
  const g = s.packed ? be.makeTensorInfo(tokenShape(s, 3 * HD), 'float32') : undefined;
  const dq = g ?? be.makeTensorInfo(tokenShape(s, HD), 'float32');
  const ldq = s.packed ? 3 * HD : HD;

  // ---- 1. dQ and Δ, a workgroup per 64 query rows of one (batch, head)
  const [, delta] = dispatch({
    key: `attn_flash_bwd_dq_${variant}`,
    outputs: [{ name: 'DQ' }, { name: 'DL' }],
    inputs: masked ? [...inDecl, { name: 'KM', type: 'i32' }] : inDecl,
    body: () => `
// staged keys at 0, values at ${BS * D4}; the parts' partial sums at the end
var<workgroup> St : array<vec4<f32>, ${2 * BS * D4}>;
${ATTENTION_BIAS(s.causal, masked)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let lid = l3.x;
  let row = lid % ${BR}u; let part = lid / ${BR}u;
  let zh = w3.y;
  let b = zh / P.H; let h = zh % P.H; let hk = h / P.rep;
  let i = w3.x * ${BR}u + row;
  let ic = min(i, P.T - 1u);
  let qb = b * P.T * P.ldq + P.offq + h * ${D}u + ic * P.ldq;
  let ob = (b * P.T + ic) * P.H * ${D}u + h * ${D}u;
  let kb = b * P.T * P.ldk + P.offk + hk * ${D}u;
  let vb = b * P.T * P.ldv + P.offv + hk * ${D}u;
  let l = LSE[zh * P.T + ic];
  ${vecs.map((c) => `let q${c} = ${rd(Q, `qb + ${4 * c}u`)}; let g${c} = ${rd('DO', `ob + ${4 * c}u`)};`).join('\n  ')}
  ${vecs.map((c) => `var a${c} = vec4<f32>(0.0); var e${c} = vec4<f32>(0.0);`).join('\n  ')}
  var dl = 0.0;
  let kEnd = ${s.causal ? `min(P.T, (w3.x + 1u) * ${BR}u)` : 'P.T'};
  for (var j0 = 0u; j0 < kEnd; j0 += ${BS}u) {
    ${stage(D4, WG, 'j0', (r) => rd(K, `kb + ${r} * P.ldk + c`), (r) => rd(V, `vb + ${r} * P.ldv + c`))}
    let n = min(${BS}u, kEnd - j0);
    // constant trip counts with the end as a branch, so Tint proves the St indices in range (no clamps: entry 28)
    for (var t = 0u; t < ${per}u; t++) {
      let jj = part * ${per}u + t;
      if (jj >= n) { break; }
      ${dot('qk', (c) => `q${c}, St[jj * ${D4}u + ${c}u]`, D4)}
      ${dot('dp', (c) => `g${c}, St[${BS * D4}u + jj * ${D4}u + ${c}u]`, D4)}
      let p = exp(qk * P.scale + biasAt(b, i, j0 + jj) - l);
      let pd = p * dp;
      dl += pd;
      ${vecs.map((c) => `a${c} = fma(vec4<f32>(pd), St[jj * ${D4}u + ${c}u], a${c}); e${c} = fma(vec4<f32>(p), St[jj * ${D4}u + ${c}u], e${c});`).join('\n      ')}
    }
    workgroupBarrier();
  }
  ${combine(S, D4, ['a', 'e'], 'dl')}
  if (part == 0u && i < P.T) {
    let db = (b * P.T + i) * P.lddq + h * ${D}u;
    ${vecs.map((c) => `let d${c} = P.scale * (a${c} - dl * e${c}); ${wr('DQ', `db + ${4 * c}u`, `d${c}`)}`).join('\n    ')}
    DL[zh * P.T + i] = dl;
  }
}`,
  }, masked ? [...inputs, keyMask!] : inputs, [dq, { shape: [s.B * s.H * s.T] }], [...common, ['lddq', 'u32', ldq]], [Math.ceil(s.T / BR), s.B * s.H, 1]);

  // ---- 2. dK and dV, a workgroup per 64 key rows of one (batch, kv head), over its rep query heads
  const outs = s.packed ? [g!] : [be.makeTensorInfo(tokenShape(s, KD), 'float32'), be.makeTensorInfo(tokenShape(s, KD), 'float32')];
  const DK = 'DK', DV = s.packed ? 'DK' : 'DV';
  dispatch({
    key: `attn_flash_bwd_dkv_${variant}`,
    outputs: s.packed ? [{ name: 'DK' }] : [{ name: 'DK' }, { name: 'DV' }],
    inputs: [...inDecl, { name: 'DL' }, ...(masked ? [{ name: 'KM', type: 'i32' }] : [])],
    body: () => `
// staged queries at 0, their dO rows at ${BS * D4}; the parts' partial sums at the end
var<workgroup> St : array<vec4<f32>, ${2 * BS * D4}>;
${ATTENTION_BIAS(s.causal, masked)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let lid = l3.x;
  let row = lid % ${BR}u; let part = lid / ${BR}u;
  let zk = w3.y;
  let b = zk / P.Hkv; let hk = zk % P.Hkv;
  let j = w3.x * ${BR}u + row;
  let jc = min(j, P.T - 1u);
  let kb = b * P.T * P.ldk + P.offk + hk * ${D}u + jc * P.ldk;
  let vb = b * P.T * P.ldv + P.offv + hk * ${D}u + jc * P.ldv;
  ${vecs.map((c) => `let k${c} = ${rd(K, `kb + ${4 * c}u`)}; let v${c} = ${rd(V, `vb + ${4 * c}u`)};`).join('\n  ')}
  ${vecs.map((c) => `var dk${c} = vec4<f32>(0.0); var dv${c} = vec4<f32>(0.0);`).join('\n  ')}
  // causal: the forward gave query block w3.x keys up to its end, so rows of earlier blocks never saw these keys
  let iStart = ${s.causal ? `w3.x * ${BR}u` : '0u'};
  for (var r = 0u; r < P.rep; r++) {
    let h = hk * P.rep + r;
    let zh = b * P.H + h;
    let qb = b * P.T * P.ldq + P.offq + h * ${D}u;
    let ob = b * P.T * P.H * ${D}u + h * ${D}u;
    for (var i0 = iStart; i0 < P.T; i0 += ${BS}u) {
      ${stage(D4, WG, 'i0', (r) => rd(Q, `qb + ${r} * P.ldq + c`), (r) => rd('DO', `ob + ${r} * P.H * ${D}u + c`))}
      let n = min(${BS}u, P.T - i0);
      for (var t = 0u; t < ${per}u; t++) {
        let ii = part * ${per}u + t;
        if (ii >= n) { break; }
        let i = i0 + ii;
        ${dot('qk', (c) => `k${c}, St[ii * ${D4}u + ${c}u]`, D4)}
        ${dot('dp', (c) => `v${c}, St[${BS * D4}u + ii * ${D4}u + ${c}u]`, D4)}
        let p = exp(qk * P.scale + biasAt(b, i, jc) - LSE[zh * P.T + i]);
        let ds = p * (dp - DL[zh * P.T + i]);
        ${vecs.map((c) => `dv${c} = fma(vec4<f32>(p), St[${BS * D4}u + ii * ${D4}u + ${c}u], dv${c}); dk${c} = fma(vec4<f32>(ds), St[ii * ${D4}u + ${c}u], dk${c});`).join('\n        ')}
      }
      workgroupBarrier();
    }
  }
  ${combine(S, D4, ['dk', 'dv'])}
  if (part == 0u && j < P.T) {
    let db = (b * P.T + j) * P.lddk + hk * ${D}u;
    ${vecs.map((c) => `let sk${c} = dk${c} * P.scale; ${wr(DK, `db + P.offdk + ${4 * c}u`, `sk${c}`)} ${wr(DV, `db + P.offdv + ${4 * c}u`, `dv${c}`)}`).join('\n    ')}
  }
}`,
  }, [...inputs, delta, ...(masked ? [keyMask!] : [])], outs, [
    ...common, ['Hkv', 'u32', s.Hkv],
    ['lddk', 'u32', s.packed ? 3 * HD : KD], ['offdk', 'u32', s.packed ? HD : 0], ['offdv', 'u32', s.packed ? 2 * HD : 0],
  ], [Math.ceil(s.T / BR), s.B * s.Hkv, 1]);
  be.disposeData(delta.dataId);
  return s.packed ? [g!] : [dq, ...outs];
}
