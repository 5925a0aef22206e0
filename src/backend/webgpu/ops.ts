/**
 * The hot ops of ../ops.ts on our WGSL kernels, same signatures and math.
 *
 * Gradients: tf.customGrad evaluates every input's gradient as soon as the
 * node is reached, so a frozen W would still cost a full dW GEMM (as much
 * arithmetic as the forward). lazyGrad below is customGrad's own mechanism
 * (engine.runKernelFunc with a forward and a backward) but hands the tape
 * one thunk per input; the tape calls only those of inputs that lead to the
 * variables being differentiated, so LoRA steps never compute dW, db or
 * dgamma.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamWHyper, BatchCountOptions, DropoutSpec, TokenAttentionOptions } from '../op-types.js';
import { alias } from '../light-clone.js';
import { KERNELS } from './register.js';
import { checkType } from './batch-check.js';
import type { ActKind } from './activation.js';

type Thunks = Record<string, () => tf.Tensor>;
type Save = (ts: tf.Tensor[]) => void;

interface EngineInternals {
  runKernelFunc(p: {
    forwardFunc: (backend: tf.KernelBackend, save: Save) => tf.Tensor | tf.Tensor[];
    backwardsFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => Thunks;
    inputs: Record<string, tf.Tensor>;
    attrs?: Record<string, unknown>;
  }): tf.Tensor;
}

/**
 * customGrad with per-input lazy gradients; `forward` must save() everything
 * `backward` reads. Variables (weights, adapter matrices) are held by
 * reference instead of going through the engine's save, which clones each
 * tensor (an Identity op and a tape entry, ~400 a GPT-2 step): they outlive
 * the step and only change at the optimizer update, after the backward.
 */
export function lazyGrad<T extends tf.Tensor | tf.Tensor[], Dy = tf.Tensor>(
  inputs: Record<string, tf.Tensor>,
  forward: (save: Save) => T,
  // one dy per output; an output nothing downstream used gets null (tfjs's backprop)
  backward: (dy: Dy, saved: tf.Tensor[]) => Thunks,
): T {
  let held: Array<tf.Tensor | null> = [];
  return (tf.engine() as unknown as EngineInternals).runKernelFunc({
    forwardFunc: (_b, save) => forward((ts) => {
      held = ts.map((t) => t instanceof tf.Variable ? t : null);
      save(ts.filter((t) => !(t instanceof tf.Variable)));
    }),
    backwardsFunc: (dy, saved) => {
      let j = 0;
      return backward(dy as Dy, held.map((t) => t ?? saved[j++]));
    },
    inputs,
  }) as T;
}

const run = (name: string, inputs: Record<string, tf.Tensor | undefined>, attrs: Record<string, unknown> = {}) => {
  const clean: Record<string, tf.Tensor> = {};
  for (const k in inputs) if (inputs[k]) clean[k] = inputs[k]!;
  return tf.engine().runKernel(name, clean, attrs as never) as tf.Tensor | tf.Tensor[];
};

/** C = alpha·op(a)·op(b) (+ bias) (+ s·u·v) on our GEMM; no gradient of its own. */
export function mm(a: tf.Tensor, b: tf.Tensor, o: {
  transA?: boolean; transB?: boolean; alpha?: number; bias?: tf.Tensor;
  lowRank?: { u: tf.Tensor; v: tf.Tensor; s: number; vT: boolean };
  batch?: number; outShape?: number[]; bH?: number; bHkv?: number; bRep?: number;
  /** act(a) in place of a */
  actA?: ActKind;
  /** the product times act'(h) */
  dAct?: { h: tf.Tensor; kind: ActKind };
} = {}): tf.Tensor {
  return run(KERNELS.matmul, { a, b, bias: o.bias, u: o.lowRank?.u, v: o.lowRank?.v, h: o.dAct?.h }, {
    transA: !!o.transA, transB: !!o.transB, alpha: o.alpha ?? 1, lrScale: o.lowRank?.s ?? 0, lrVT: !!o.lowRank?.vT,
    batch: o.batch, outShape: o.outShape, bH: o.bH, bHkv: o.bHkv, bRep: o.bRep, actA: o.actA ?? '', dAct: o.dAct?.kind ?? '',
  }) as tf.Tensor;
}

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, transposeW = false): tf.Tensor2D {
  const inputs: Record<string, tf.Tensor> = { x, w };
  if (bias) inputs.bias = bias;
  return lazyGrad(inputs, (save) => {
    save([x, w]);
    return mm(x, w, { bias, transB: transposeW }) as tf.Tensor2D;
  }, (dy, [xs, ws]) => ({
    x: () => mm(dy, ws, { transB: !transposeW }),
    w: () => transposeW ? mm(dy, xs, { transA: true }) : mm(xs, dy, { transA: true }),
    bias: () => run(KERNELS.colSum, { dy }) as tf.Tensor,
  }));
}

/**
 * y = xW + b + s·(drop(x)Aᵀ)Bᵀ in two launches: u = drop(x)·Aᵀ [N, r], then
 * the base GEMM with bias and s·u·Bᵀ in its epilogue. u is kept for dB.
 * Backward: g = dy·B [N, r] once, then dx = dy·Wᵀ + s·g·A in one GEMM and
 * dA = s·gᵀ·drop(x), dB = s·dyᵀ·u only if asked for.
 */
export function loraLinear(
  x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | undefined,
  A: tf.Tensor2D, B: tf.Tensor2D, scaling: number, dropout?: DropoutSpec, transposeW = false,
): tf.Tensor2D {
  // dropout exactly as the fallback draws it (same op, same seed), outside our op so its gradient chains
  const xd = dropout && dropout.rate > 0 ? tf.dropout(x, dropout.rate, undefined, dropout.seed) as tf.Tensor2D : undefined;
  const inputs: Record<string, tf.Tensor> = { x };
  if (xd) inputs.xd = xd;
  inputs.w = w;
  if (bias) inputs.bias = bias;
  inputs.A = A;
  inputs.B = B;
  return lazyGrad(inputs, (save) => {
    const u = mm(xd ?? x, A, { transB: true });
    save([x, xd ?? x, w, A, B, u]);
    return mm(x, w, { bias, transB: transposeW, lowRank: { u, v: B, s: scaling, vT: true } }) as tf.Tensor2D;
  }, (dy, [xs, xds, ws, As, Bs, u]) => {
    const g = mm(dy, Bs); // [N, r], shared by dx and dA
    return {
      x: () => mm(dy, ws, { transB: !transposeW, lowRank: xd ? undefined : { u: g, v: As, s: scaling, vT: false } }),
      xd: () => mm(g, As, { alpha: scaling }),
      w: () => transposeW ? mm(dy, xs, { transA: true }) : mm(xs, dy, { transA: true }),
      bias: () => run(KERNELS.colSum, { dy }) as tf.Tensor,
      A: () => mm(g, xds, { transA: true, alpha: scaling }),
      B: () => mm(dy, u, { transA: true, alpha: scaling }),
    };
  });
}

function norm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D | undefined, eps: number): tf.Tensor {
  const rms = !beta;
  const inputs: Record<string, tf.Tensor> = { x, gamma };
  if (beta) inputs.beta = beta;
  return lazyGrad(inputs, (save) => {
    const [y, stats] = run(KERNELS.normFwd, { x, gamma, beta }, { eps, rms }) as tf.Tensor[];
    save([x, gamma, stats]);
    return y;
  }, (dy, [xs, gs, stats]) => {
    // dγ = Σ dy·x̂ with x̂ from the saved row statistics, dβ = Σ dy; only for trainable norms
    return {
      x: () => run(KERNELS.normBwd, { dy, x: xs, gamma: gs, stats }, { rms }) as tf.Tensor,
      gamma: () => run(KERNELS.colSum, { dy, x: xs, stats }, { rms }) as tf.Tensor,
      beta: () => run(KERNELS.colSum, { dy }) as tf.Tensor,
    };
  });
}

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  return norm(x, gamma, beta, eps);
}

export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps: number): tf.Tensor {
  return norm(x, w, undefined, eps);
}

/**
 * [h, y] = [x + a, layerNorm(x + a)] in one kernel each way (norm.ts). The
 * backward hands x and a the same gradient, dh + the norm's dx; a gets the
 * kernel's tensor and x an alias of it (light-clone.ts; was a Reshape op), since tfjs's tape may dispose one
 * input's gradient when it adds another to it, which must not free the other's.
 */
export function addLayerNorm(x: tf.Tensor, a: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): [tf.Tensor, tf.Tensor] {
  if (!tf.util.arraysEqual(x.shape, a.shape)) { // broadcasting: the plain composition
    const h = tf.add(x, a);
    return [h, layerNorm(h, gamma, beta, eps)];
  }
  return lazyGrad<tf.Tensor[], Array<tf.Tensor | null>>({ x, a, gamma, beta }, (save) => {
    const [h, y, stats] = run(KERNELS.addNormFwd, { x, a, gamma, beta }, { eps }) as tf.Tensor[];
    save([h, gamma, stats]);
    return [h, y];
  }, ([dh, dy], [hs, gs, stats]) => {
    const D = hs.shape[hs.shape.length - 1];
    const dsum = dy ? run(KERNELS.addNormBwd, { dy, h: hs, gamma: gs, stats, dh: dh ?? undefined }) as tf.Tensor : dh!;
    return {
      x: () => alias(dsum),
      a: () => dy ? dsum : alias(dsum),
      gamma: () => dy ? run(KERNELS.colSum, { dy, x: hs, stats }) as tf.Tensor : tf.zeros([D]),
      beta: () => dy ? run(KERNELS.colSum, { dy }) as tf.Tensor : tf.zeros([D]),
    };
  }) as [tf.Tensor, tf.Tensor];
}

function act(x: tf.Tensor, kind: 'gelu_tanh' | 'gelu_erf' | 'silu'): tf.Tensor {
  return lazyGrad({ x }, (save) => {
    save([x]);
    return run(KERNELS.act, { x }, { kind }) as tf.Tensor;
  }, (dy, [xs]) => ({ x: () => run(KERNELS.act, { x: xs, dy }, { kind }) as tf.Tensor }));
}

export function gelu(x: tf.Tensor, kind: 'tanh' | 'erf'): tf.Tensor {
  return act(x, kind === 'erf' ? 'gelu_erf' : 'gelu_tanh');
}

/**
 * y = gelu(h)·W + b with the GELU inside the GEMM (an MLP's second projection): the forward applies it to h as
 * the GEMM loads it, the input gradient multiplies dy·Wᵀ by gelu'(h) in the GEMM's epilogue, so neither gelu(h)
 * nor its gradient is ever a tensor, and the two GELU kernels a layer do not run (bench/NOTES.md entry 37). The
 * weight gradient (full training only) takes gelu(h) through the activation kernel.
 */
export function geluLinear(h: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | undefined, kind: 'tanh' | 'erf', transposeW = false): tf.Tensor2D {
  const k: ActKind = kind === 'erf' ? 'gelu_erf' : 'gelu_tanh';
  const inputs: Record<string, tf.Tensor> = { h, w };
  if (bias) inputs.bias = bias;
  return lazyGrad(inputs, (save) => {
    save([h, w]);
    return mm(h, w, { bias, transB: transposeW, actA: k }) as tf.Tensor2D;
  }, (dy, [hs, ws]) => ({
    h: () => mm(dy, ws, { transB: !transposeW, dAct: { h: hs, kind: k } }),
    w: () => {
      const a = run(KERNELS.act, { x: hs }, { kind: k }) as tf.Tensor;
      const dw = transposeW ? mm(dy, a, { transA: true }) : mm(a, dy, { transA: true });
      a.dispose();
      return dw;
    },
    bias: () => run(KERNELS.colSum, { dy }) as tf.Tensor,
  }));
}

export function silu(x: tf.Tensor): tf.Tensor {
  return act(x, 'silu');
}

/**
 * Scaled dot-product attention over token-major projections (attention.ts):
 * q [B, T, H·D], k/v [B, T, Hkv·D], or GPT-2's packed qkv [B, T, 3C];
 * returns [B, T, H·D]. Saves the inputs and the row LSE only.
 */
function attend<T extends tf.Tensor = tf.Tensor3D>(inputs: Record<string, tf.Tensor>, opts: TokenAttentionOptions, seq?: number): T {
  const mask = opts.keyMask ? tf.cast(opts.keyMask, 'int32') : undefined;
  // seq: the inputs are [B·T, ·] rows of seq-token sequences (attention.ts reads B and T from it)
  const attrs = { heads: opts.heads, kvHeads: opts.kvHeads ?? opts.heads, causal: opts.causal, scale: opts.scale, seq: seq ?? 0 };
  const names = Object.keys(inputs);
  return lazyGrad(inputs, (save) => {
    const [o, lse] = run(KERNELS.attn, { ...inputs, keyMask: mask }, attrs) as tf.Tensor[];
    save([...names.map((n) => inputs[n]), lse, ...(mask ? [mask] : [])]);
    return o as T;
  }, (dy, saved) => {
    const ins: Record<string, tf.Tensor> = {};
    names.forEach((n, i) => { ins[n] = saved[i]; });
    const grads = run(KERNELS.attnGrad, { ...ins, lse: saved[names.length], dy, keyMask: saved[names.length + 1] }, attrs) as tf.Tensor[];
    const out: Record<string, () => tf.Tensor> = {};
    names.forEach((n, i) => { out[n] = () => grads[i]; });
    return out;
  });
}

export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: TokenAttentionOptions): tf.Tensor3D {
  return attend({ q, k, v }, opts);
}

export function attentionPacked(qkv: tf.Tensor3D, opts: TokenAttentionOptions): tf.Tensor3D {
  return attend({ qkv }, opts);
}

/** qkv [B·T, 3C] rows of T-token sequences; returns [B·T, C] (no Reshape either way). */
export function attentionPackedRows(qkv: tf.Tensor2D, T: number, opts: TokenAttentionOptions): tf.Tensor2D {
  return attend<tf.Tensor2D>({ qkv }, opts, T);
}

/** Mean softmax cross-entropy over rows whose label is not -100. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const y = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32') as tf.Tensor1D;
  return lazyGrad({ logits }, (save) => {
    const [loss, lse, count] = run(KERNELS.xent, { logits, labels: y }) as tf.Tensor[];
    save([logits, y, lse, count]);
    return loss as tf.Scalar;
  }, (dy, [ls, ys, lse, count]) => ({
    logits: () => run(KERNELS.xentGrad, { logits: ls, labels: ys, lse, count, dy }) as tf.Tensor,
  }));
}

/** [Σg², 1 if g is all finite else 0] in one dispatch (optim.ts). */
export function gradStats(g: tf.Tensor): tf.Tensor1D {
  return run(KERNELS.gradStats, { g }) as tf.Tensor1D;
}

/** ../ops.ts batchCounts in one dispatch (batch-check.ts); undefined for a dtype the kernel does not read (the caller falls back) */
export function batchCounts(ids: tf.Tensor | undefined, mask: tf.Tensor | undefined, labels: tf.Tensor | undefined,
  o: BatchCountOptions): tf.Tensor1D | undefined {
  const parts: Record<string, tf.Tensor> = {};
  if (ids) parts.ids = ids;
  if (mask) parts.mask = mask;
  if (labels) parts.labels = labels;
  if (Object.values(parts).some((t) => !checkType(t))) return undefined;
  return run(KERNELS.batchCheck, parts, { ...o }) as tf.Tensor1D;
}

/** torch AdamW's new (p, m, v) in one dispatch (optim.ts); with h.ctrl, scale and whether to apply come from it. */
export function adamw(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, h: AdamWHyper): tf.Tensor[] {
  const { ctrl, ...rest } = h;
  return run(KERNELS.adamw, { p, g, m, v, c: ctrl }, rest) as tf.Tensor[];
}

/** [clipping coefficient, 1 to apply / 0 to keep] from a step's read-back values, on the device (optim.ts). */
export function stepControl(values: tf.Tensor, o: { nCheck: number; n: number; maxNorm: number }): tf.Tensor1D {
  return run(KERNELS.stepControl, { values }, { ...o }) as tf.Tensor1D;
}

/** gradStats of each of gs as rows of one [n, 2] tensor: one engine op (optim.ts, multi-tensor). */
export function gradStatsMany(gs: tf.Tensor[]): tf.Tensor2D {
  const inputs: Record<string, tf.Tensor> = {};
  gs.forEach((g, k) => { inputs[`g${k}`] = g; });
  return run(KERNELS.gradStatsMany, inputs, { n: gs.length }) as tf.Tensor2D;
}

/** the step's hyperparameters for adamwInPlace, on the device for as long as the backend lives */
let hyper: { t: tf.Tensor; backend: tf.KernelBackend } | undefined;

/**
 * AdamW written into each item's p, m and v (optim.ts adamwInPlaceKernel): one engine op, no new tensors. Only
 * items whose p, m and v own their buffers alone (a clone or a tensor the variable was made from shares one, and
 * must not change) and are float32; the indices of the others are returned, for the out-of-place path.
 */
export function adamwInPlace(items: Array<{ p: tf.Tensor; g: tf.Tensor; m: tf.Tensor; v: tf.Tensor }>, h: AdamWHyper): number[] {
  const be = tf.backend();
  const own = (t: tf.Tensor) => t.dtype === 'float32' && be.refCount(t.dataId) === 1;
  const left: number[] = [];
  const inputs: Record<string, tf.Tensor> = {};
  let n = 0;
  items.forEach(({ p, g, m, v }, i) => {
    if (!(own(p) && own(m) && own(v))) { left.push(i); return; }
    inputs[`p${n}`] = p; inputs[`g${n}`] = g; inputs[`m${n}`] = m; inputs[`v${n}`] = v;
    n++;
  });
  if (!n) return left;
  if (!hyper || hyper.backend !== be || hyper.t.isDisposed) hyper = { t: tf.keep(tf.zeros([8])), backend: be };
  inputs.h = hyper.t;
  const { ctrl, ...rest } = h;
  if (ctrl) inputs.c = ctrl;
  run(KERNELS.adamwInPlace, inputs, { ...rest, n });
  return left;
}

/** adamw of each item, [p', m', v'] per item: one engine op (optim.ts, multi-tensor). */
export function adamwMany(items: Array<{ p: tf.Tensor; g: tf.Tensor; m: tf.Tensor; v: tf.Tensor }>, h: AdamWHyper): tf.Tensor[][] {
  const inputs: Record<string, tf.Tensor> = {};
  items.forEach(({ p, g, m, v }, k) => { inputs[`p${k}`] = p; inputs[`g${k}`] = g; inputs[`m${k}`] = m; inputs[`v${k}`] = v; });
  const { ctrl, ...rest } = h;
  if (ctrl) inputs.c = ctrl;
  const outs = run(KERNELS.adamwMany, inputs, { ...rest, n: items.length }) as tf.Tensor[];
  return items.map((_, k) => outs.slice(3 * k, 3 * k + 3));
}
