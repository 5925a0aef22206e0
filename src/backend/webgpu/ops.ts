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
import type { AttentionOptions, DropoutSpec } from '../ops.js';
import { KERNELS } from './kernels.js';

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

/** customGrad with per-input lazy gradients; `forward` must save() everything `backward` reads. */
export function lazyGrad<T extends tf.Tensor>(
  inputs: Record<string, tf.Tensor>,
  forward: (save: Save) => T,
  backward: (dy: tf.Tensor, saved: tf.Tensor[]) => Thunks,
): T {
  return (tf.engine() as unknown as EngineInternals).runKernelFunc({
    forwardFunc: (_b, save) => forward(save),
    backwardsFunc: (dy, saved) => backward(dy as tf.Tensor, saved),
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
} = {}): tf.Tensor {
  return run(KERNELS.matmul, { a, b, bias: o.bias, u: o.lowRank?.u, v: o.lowRank?.v }, {
    transA: !!o.transA, transB: !!o.transB, alpha: o.alpha ?? 1, lrScale: o.lowRank?.s ?? 0, lrVT: !!o.lowRank?.vT,
    batch: o.batch, outShape: o.outShape, bH: o.bH, bHkv: o.bHkv, bRep: o.bRep,
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
    bias: () => tf.sum(dy, 0),
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
      bias: () => tf.sum(dy, 0),
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
    const D = xs.shape[xs.shape.length - 1];
    // x̂ for dγ, rebuilt from the saved row statistics; only for trainable norms
    const xhat = () => {
      const s = tf.reshape(stats, [...xs.shape.slice(0, -1), 2]);
      const [mean, rstd] = tf.split(s, 2, -1);
      return tf.mul(tf.sub(xs, rms ? 0 : mean), rstd);
    };
    return {
      x: () => run(KERNELS.normBwd, { dy, x: xs, gamma: gs, stats }, { rms }) as tf.Tensor,
      gamma: () => tf.reshape(tf.sum(tf.reshape(tf.mul(dy, xhat()), [-1, D]), 0), [D]),
      beta: () => tf.reshape(tf.sum(tf.reshape(dy, [-1, D]), 0), [D]),
    };
  });
}

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  return norm(x, gamma, beta, eps);
}

export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps: number): tf.Tensor {
  return norm(x, w, undefined, eps);
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

export function silu(x: tf.Tensor): tf.Tensor {
  return act(x, 'silu');
}

/**
 * Scaled dot-product attention without keeping T×T between passes:
 * forward Z = scale·QKᵀ (GEMM) -> masked softmax (P, lse) -> O = PV (GEMM),
 * saving q, k, v and lse only. Backward recomputes Z, rebuilds P from lse,
 * and forms dS = scale·P∘(dP − rowsum(P∘dP)) in one row kernel.
 * GQA: the GEMMs read kv head (z / H)·Hkv + (z % H) / rep for query head z.
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions): tf.Tensor4D {
  const [Bn, H, T, D] = q.shape;
  const Hkv = k.shape[1];
  const rep = H / Hkv;
  const BH = Bn * H;
  const gqa = { bH: H, bHkv: Hkv, bRep: rep };
  const mask = opts.keyMask ? tf.cast(opts.keyMask, 'float32') : undefined;
  const smAttrs = { causal: opts.causal, heads: H, scale: opts.scale };
  const scores = (qs: tf.Tensor, ks: tf.Tensor) => mm(qs, ks, { transB: true, alpha: opts.scale, batch: BH, outShape: [BH, T, T], ...gqa });
  return lazyGrad({ q, k, v }, (save) => {
    const z = scores(q, k);
    const [p, lse] = run(KERNELS.attnSm, { z, keyMask: mask }, smAttrs) as tf.Tensor[];
    save(mask ? [q, k, v, lse, mask] : [q, k, v, lse]);
    return mm(p, v, { batch: BH, outShape: [Bn, H, T, D], ...gqa }) as tf.Tensor4D;
  }, (dO, [qs, ks, vs, lse, km]) => {
    const z = scores(qs, ks);
    const dp = mm(dO, vs, { transB: true, batch: BH, outShape: [BH, T, T], ...gqa });
    const [ds, p] = run(KERNELS.attnSmGrad, { z, dp, lse, keyMask: km }, smAttrs) as tf.Tensor[];
    z.dispose();
    dp.dispose();
    // per query head; GQA sums each group of rep heads back onto its kv head
    const toKv = (t: tf.Tensor) => rep === 1 ? t : tf.sum(tf.reshape(t, [Bn, Hkv, rep, T, D]), 2);
    return {
      q: () => mm(ds, ks, { batch: BH, outShape: [Bn, H, T, D], ...gqa }),
      k: () => toKv(mm(ds, qs, { transA: true, batch: BH, outShape: [Bn, H, T, D] })),
      v: () => toKv(mm(p, dO, { transA: true, batch: BH, outShape: [Bn, H, T, D] })),
    };
  });
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
