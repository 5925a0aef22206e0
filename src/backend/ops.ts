/**
 * The hot ops every model and the trainer call, in plain tfjs-core. This is
 * the one seam where a backend may swap in fused kernels (see
 * src/backend/webgpu/); the math here is the reference those kernels are
 * tested against. Nothing outside src/backend/ imports a backend directly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from './flags.js';
import { fused } from './webgpu/active.js';
import { IGNORE_INDEX } from './labels.js';
import type { AdamWHyper, AttentionOptions, BatchCountOptions, DropoutSpec, TokenAttentionOptions } from './op-types.js';

export type { AdamWHyper, AttentionOptions, DropoutSpec, TokenAttentionOptions } from './op-types.js';

/**
 * y = x·W + b, x [N, in]. W is [in, out] (HF Conv1D) or, with transposeW,
 * [out, in] (nn.Linear), so checkpoints are used as stored.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, transposeW = false): tf.Tensor2D {
  const fz = fused(); if (fz) return fz.linear(x, w, bias, transposeW);
  const y = tf.matMul(x, w, false, transposeW) as tf.Tensor2D;
  return bias ? tf.add(y, bias) as tf.Tensor2D : y;
}

/**
 * y = x·W + b + s·(drop(x)·Aᵀ)·Bᵀ, with PEFT's layouts A [r, in], B [out, r].
 * The low-rank product goes through the r-wide bottleneck first, so the
 * update never materialises an in×out matrix.
 */
export function loraLinear(
  x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | undefined,
  A: tf.Tensor2D, B: tf.Tensor2D, scaling: number, dropout?: DropoutSpec, transposeW = false,
): tf.Tensor2D {
  const fz = fused(); if (fz) return fz.loraLinear(x, w, bias, A, B, scaling, dropout, transposeW);
  const base = linear(x, w, bias, transposeW);
  const xd = dropout && dropout.rate > 0 ? tf.dropout(x, dropout.rate, undefined, dropout.seed) as tf.Tensor2D : x;
  const low = tf.matMul(tf.matMul(xd, A, false, true), B, false, true);
  return tf.add(base, tf.mul(low, scaling));
}

/**
 * Scaled dot-product attention on the projections' own layout: q
 * [B, T, H·D], k/v [B, T, Hkv·D] (H a multiple of Hkv); returns [B, T, H·D].
 * Taking token-major tensors lets a backend address heads by stride instead
 * of transposing (src/backend/webgpu/attention.ts).
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: TokenAttentionOptions): tf.Tensor3D {
  const fz = fused(); if (fz) return fz.attention(q, k, v, opts);
  const [B, T, HD] = q.shape;
  const H = opts.heads, Hkv = opts.kvHeads ?? H, D = HD / H;
  const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, D]), [0, 2, 1, 3]) as tf.Tensor4D;
  const y = attentionHeads(heads(q, H), heads(k, Hkv), heads(v, Hkv), opts);
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, HD]) as tf.Tensor3D;
}

/** Attention on GPT-2's fused c_attn output [B, T, 3C] (q, k, v side by side). */
export function attentionPacked(qkv: tf.Tensor3D, opts: TokenAttentionOptions): tf.Tensor3D {
  const fz = fused(); if (fz) return fz.attentionPacked(qkv, opts);
  const [q, k, v] = tf.split(qkv, 3, -1) as tf.Tensor3D[];
  return attention(q, k, v, opts);
}

/**
 * Whether a model should keep its token stream as [B·T, C] rows (attentionPackedRows,
 * Linear.applyRows): true only on our webgpu kernels with SHARELORA_WEBGPU_FLAT_STREAM=1,
 * so the plain path (switch off, cpu, wasm) runs the same ops as before.
 */
export function flatStream(): boolean {
  return !!fused() && flags.webgpuFlatStream;
}

/**
 * attentionPacked on rows: qkv [B·T, 3C] of T-token sequences; returns [B·T, C].
 * Our kernel takes the rows as they are; the fallback reshapes around attentionPacked.
 */
export function attentionPackedRows(qkv: tf.Tensor2D, T: number, opts: TokenAttentionOptions): tf.Tensor2D {
  const fz = fused(); if (fz) return fz.attentionPackedRows(qkv, T, opts);
  const [N, W] = qkv.shape;
  const y = attentionPacked(tf.reshape(qkv, [N / T, T, W]) as tf.Tensor3D, opts);
  return tf.reshape(y, [N, W / 3]) as tf.Tensor2D;
}

/** The reference math per head: q [B,H,T,D], k/v [B,Hkv,T,D]. */
function attentionHeads(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions): tf.Tensor4D {
  const [B, H, T, D] = q.shape;
  const Hkv = k.shape[1];
  const rep = H / Hkv;
  // grouped-query attention without copying k/v: query head h reads kv head floor(h / rep) (HF repeat_kv)
  const qg = rep === 1 ? q : tf.reshape(q, [B, Hkv, rep * T, D]);
  let scores = tf.mul(tf.matMul(qg, k, false, true), opts.scale); // [B,Hkv,rep*T,T]
  const bias = attentionBias(B, T, opts.causal, opts.keyMask);
  if (bias) scores = rep === 1 ? tf.add(scores, bias) : tf.reshape(tf.add(tf.reshape(scores, [B, Hkv, rep, T, T]), tf.expandDims(bias, 1)), [B, Hkv, rep * T, T]);
  return tf.reshape(tf.matMul(tf.softmax(scores), v), [B, H, T, D]) as tf.Tensor4D;
}

/** Additive mask [B|1, 1, T, T]: 0 where allowed, a large negative where not. */
function attentionBias(B: number, T: number, causal: boolean, keyMask?: tf.Tensor2D): tf.Tensor | undefined {
  const NEG = -1e9;
  let bias: tf.Tensor | undefined;
  if (causal) bias = tf.reshape(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), NEG), [1, 1, T, T]);
  if (keyMask) {
    const km = tf.reshape(tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), NEG), [B, 1, 1, T]);
    bias = bias ? tf.add(bias, km) : km;
  }
  return bias;
}

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  const fz = fused(); if (fz) return fz.layerNorm(x, gamma, beta, eps);
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * A pre-LN block's residual add and the LayerNorm that reads it: h = x + a,
 * y = layerNorm(h); returns [h, y]. With SHARELORA_WEBGPU_FUSED_LN=1 the
 * webgpu backend does both in one kernel, and the backward in one.
 */
export function addLayerNorm(x: tf.Tensor, a: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): [tf.Tensor, tf.Tensor] {
  const fz = fused(); if (fz && flags.webgpuFusedLN) return fz.addLayerNorm(x, a, gamma, beta, eps);
  const h = tf.add(x, a);
  return [h, layerNorm(h, gamma, beta, eps)];
}

export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps: number): tf.Tensor {
  const fz = fused(); if (fz) return fz.rmsNorm(x, w, eps);
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

/** 'tanh' is GPT-2's gelu_new; 'erf' is the exact GELU RoBERTa uses. */
export function gelu(x: tf.Tensor, kind: 'tanh' | 'erf'): tf.Tensor {
  const fz = fused(); if (fz) return fz.gelu(x, kind);
  if (kind === 'erf') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  // 0.5·x·(1 + tanh(u)) written as x·sigmoid(2u), the same function, and x³ as x·x·x (as torch computes pow(x, 3)):
  // tfjs-backend-wasm runs Tanh and Pow as scalar libm loops (72 and 75 ms for 2M floats on 2 cores) and Sigmoid
  // and Mul vectorised (9 and 8 ms), and GPT-2's MLP activation was a fifth of a wasm training step
  const u2 = tf.mul(2 * Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))));
  return tf.mul(x, tf.sigmoid(u2));
}

/**
 * y = gelu(h)·W + b (an MLP's second projection after its activation): the same as linear(gelu(h), ...), which
 * is what runs here; the webgpu kernels apply the GELU inside the GEMM instead (webgpu/ops.ts geluLinear).
 */
export function geluLinear(h: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | undefined, kind: 'tanh' | 'erf', transposeW = false): tf.Tensor2D {
  const fz = fused(); if (fz && flags.webgpuGeluGemm) return fz.geluLinear(h, w, bias, kind, transposeW);
  return linear(gelu(h, kind) as tf.Tensor2D, w, bias, transposeW);
}

export function silu(x: tf.Tensor): tf.Tensor {
  const fz = fused(); if (fz) return fz.silu(x);
  return tf.mul(x, tf.sigmoid(x));
}

/** Mean softmax cross-entropy over rows whose label is not IGNORE_INDEX (-100, torch's ignore_index). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const fz = fused(); if (fz) return fz.crossEntropy(logits, labels);
  const valid = tf.cast(tf.notEqual(labels, IGNORE_INDEX), 'float32');
  const safe = tf.mul(tf.cast(labels, 'int32'), tf.cast(valid, 'int32')) as tf.Tensor1D;
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(safe, logits.shape[1])), -1);
  const n = tf.maximum(tf.sum(valid), 1);
  return tf.div(tf.neg(tf.sum(tf.mul(picked, valid))), n) as tf.Scalar;
}

/** 1 where an id is not a whole number in [0, n) (NaN included) */
export function invalidIds(ids: tf.Tensor, n: number): tf.Tensor {
  const whole = ids.dtype === 'int32' ? tf.scalar(true, 'bool') : tf.equal(ids, tf.floor(ids));
  return tf.logicalNot(tf.logicalAnd(whole, tf.logicalAnd(tf.greaterEqual(ids, 0), tf.less(ids, n))));
}

/** 1 where an attention-mask value is neither 0 (padding) nor 1 (token) */
export function invalidMask(mask: tf.Tensor): tf.Tensor {
  return tf.logicalAnd(tf.notEqual(mask, 0), tf.notEqual(mask, 1));
}

/** 1 where a label is wrong: not finite (a regression target), or neither IGNORE_INDEX nor a class id in [0, range) */
export function invalidLabels(labels: tf.Tensor, o: { range: number; regression: boolean }): tf.Tensor {
  if (o.regression) return tf.logicalNot(tf.isFinite(labels));
  return tf.logicalAnd(tf.notEqual(labels, IGNORE_INDEX), invalidIds(labels, o.range));
}

/**
 * The labels that carry a loss (the weight of a batch's mean loss): every target of a regression, else those that
 * are not IGNORE_INDEX, from the second column on where `skipFirst` (a causal LM's position 0 predicts nothing).
 */
export function lossLabels(labels: tf.Tensor, o: { regression: boolean; skipFirst: boolean }): tf.Scalar {
  return tf.tidy(() => {
    if (o.regression) return tf.scalar(labels.size);
    const used = o.skipFirst ? tf.slice(labels, [0, 1], [labels.shape[0], labels.shape[1]! - 1]) : labels;
    return tf.sum(tf.cast(tf.notEqual(used, IGNORE_INDEX), 'float32'));
  });
}

/**
 * A batch's device-side check in one tensor: [bad input ids, bad attention-mask values, bad labels, labels that carry
 * a loss] (an absent part counts 0, absent labels count 1 that carries a loss). `skipFirst`: a causal LM's first
 * column predicts nothing. One dispatch on webgpu (webgpu/batch-check.ts) instead of about fifteen.
 */
export function batchCounts(ids: tf.Tensor | undefined, mask: tf.Tensor | undefined, labels: tf.Tensor | undefined,
  o: BatchCountOptions): tf.Tensor1D {
  const fz = fused(); if (fz) { const r = fz.batchCounts(ids, mask, labels, o); if (r) return r; }
  return tf.tidy(() => {
    const count = (bad: tf.Tensor): tf.Tensor => tf.sum(tf.cast(bad, 'float32'));
    const zero: tf.Tensor = tf.scalar(0);
    const learn: tf.Tensor = labels ? lossLabels(labels, o) : tf.scalar(1);
    return tf.stack([
      ids ? count(invalidIds(ids, o.vocab)) : zero,
      mask ? count(invalidMask(mask)) : zero,
      labels ? count(invalidLabels(labels, { range: o.labelRange, regression: o.regression })) : zero,
      learn,
    ]) as tf.Tensor1D;
  });
}

/** [Σg², 1 if every element of g is finite else 0], still on the device (the trainer's clipping and overflow check). */
export function gradStats(g: tf.Tensor): tf.Tensor1D {
  const fz = fused(); if (fz) return fz.gradStats(g);
  return tf.stack([tf.sum(tf.square(g)), tf.cast(tf.all(tf.isFinite(g)), 'float32')]) as tf.Tensor1D;
}

/** gradStats of each tensor, stacked: [n, 2]. One op over all of them with SHARELORA_WEBGPU_MULTI_TENSOR=1 on webgpu. */
export function gradStatsMany(gs: tf.Tensor[]): tf.Tensor2D {
  const fz = fused(); if (fz && flags.webgpuMultiTensor && gs.length > 1) return fz.gradStatsMany(gs);
  return tf.stack(gs.map((g) => gradStats(g))) as tf.Tensor2D;
}

/**
 * A pipelined step's control on the device: [clipping coefficient, 1 to apply
 * the update or 0 to leave every parameter as it is], from the values a step
 * reads back (loss, nCheck device-check counts, n rows of gradStats). webgpu only.
 */
export function stepControl(values: tf.Tensor, o: { nCheck: number; n: number; maxNorm: number }): tf.Tensor1D {
  const fz = fused();
  if (!fz) throw new Error('stepControl needs the webgpu kernels (a pipelined step)');
  return fz.stepControl(values, o);
}

/** the most elements one multi-tensor AdamW op takes: its group's new p, m and v all exist until `each` has had them */
const ADAMW_GROUP_ELEMENTS = 1 << 22;

/**
 * adamwUpdate for each item; `each(i, [p', m', v'])` gets item i's result as
 * soon as it exists, to assign and free it. With SHARELORA_WEBGPU_MULTI_TENSOR=1
 * on webgpu, items go in groups of up to 4M elements per op (a large tensor
 * alone), so a LoRA step's few small tensors are one op; otherwise one
 * adamwUpdate at a time, as before.
 */
export function adamwUpdates(items: Array<{ p: tf.Tensor; g: tf.Tensor; m: tf.Tensor; v: tf.Tensor }>, h: AdamWHyper, each: (i: number, next: tf.Tensor[]) => void): void {
  const fz = fused();
  if (!fz || !flags.webgpuMultiTensor) {
    items.forEach(({ p, g, m, v }, i) => each(i, adamwUpdate(p, g, m, v, h)));
    return;
  }
  for (let start = 0; start < items.length;) {
    let end = start + 1, total = items[start].p.size;
    while (end < items.length && total + items[end].p.size <= ADAMW_GROUP_ELEMENTS) total += items[end++].p.size;
    const group = items.slice(start, end);
    const outs = group.length === 1 ? [fz.adamw(group[0].p, group[0].g, group[0].m, group[0].v, h)] : fz.adamwMany(group, h);
    outs.forEach((o, j) => each(start + j, o));
    start = end;
  }
}

/**
 * Applies AdamW to every item. On webgpu (unless SHARELORA_WEBGPU_ADAMW_INPLACE=0) it writes into p, m and v
 * where no other tensor shares their buffers, with no new tensors (webgpu/optim.ts adamwInPlaceKernel); every
 * other item goes through adamwUpdates, and `assign(i, next)` puts its new [p, m, v] in place.
 */
export function adamwApply(items: Array<{ p: tf.Tensor; g: tf.Tensor; m: tf.Tensor; v: tf.Tensor }>, h: AdamWHyper, assign: (i: number, next: tf.Tensor[]) => void): void {
  const fz = fused();
  const left = fz && flags.webgpuAdamwInPlace ? fz.adamwInPlace(items, h) : items.map((_, i) => i);
  if (left.length) adamwUpdates(left.map((i) => items[i]), h, (j, next) => assign(left[j], next));
}

/**
 * torch.optim.AdamW's new [p, m, v] for one parameter, not yet assigned:
 * decoupled weight decay first, then the moments, then the bias-corrected step.
 */
export function adamwUpdate(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, h: AdamWHyper): tf.Tensor[] {
  const fz = fused(); if (fz) return fz.adamw(p, g, m, v, h);
  if (h.ctrl) throw new Error('adamwUpdate: a device-side control (ctrl) needs the webgpu kernels');
  return tf.tidy(() => {
    const gs = h.gscale !== 1 ? tf.mul(g, h.gscale) : g;
    // decay is exactly 1 without weight decay, and p·1 is p: skip the op
    const decayed = h.decay !== 1 ? tf.mul(p, h.decay) : p;
    const m1 = tf.add(tf.mul(m, h.beta1), tf.mul(gs, 1 - h.beta1));
    const v1 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(gs), 1 - h.beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), h.sqrtBc2), h.eps);
    return [tf.sub(decayed, tf.mul(tf.div(m1, denom), h.stepSize)), m1, v1];
  });
}
