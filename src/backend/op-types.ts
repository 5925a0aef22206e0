/**
 * The option types of the hot ops (ops.ts), in a leaf file: the fused webgpu
 * kernels implement the same signatures, and ops.ts dispatches to them, so
 * neither may import the other's types.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface DropoutSpec { rate: number; seed: number }

/** batchCounts: the vocabulary, the labels' class range, a regression head, and a causal LM's unpredicted first column */
export interface BatchCountOptions { vocab: number; labelRange: number; regression: boolean; skipFirst: boolean }

export interface AttentionOptions {
  causal: boolean;
  /** [B, T] with 1 for keys that may be attended to, 0 for padding */
  keyMask?: tf.Tensor2D;
  scale: number;
}

export interface TokenAttentionOptions extends AttentionOptions {
  heads: number;
  /** key/value heads (grouped-query attention); defaults to heads */
  kvHeads?: number;
}

/** One AdamW update's constants, from the optimizer's host state (src/train/adamw.ts). */
export interface AdamWHyper {
  /** 1 − lr·weightDecay */
  decay: number;
  beta1: number; beta2: number; eps: number;
  /** lr / (1 − β1ᵗ) */
  stepSize: number;
  /** √(1 − β2ᵗ) */
  sqrtBc2: number;
  /** the clipping coefficient, applied to g first */
  gscale: number;
  /**
   * webgpu only (a pipelined step): a [2] tensor on the device, [clipping coefficient, 1 to apply or 0 to leave
   * p, m and v as they are], used instead of gscale (ops.stepControl makes it)
   */
  ctrl?: tf.Tensor;
}
