import type * as tf from '@tensorflow/tfjs-core';
import type { IdsLike } from '../data/batch.js';
import type { Linear } from './linear.js';
import type { WeightRef } from './param.js';

export type { IdsLike };

export type Family = 'gpt2' | 'roberta' | 'llama';
export type Task = 'causal-lm' | 'seq-cls' | 'masked-lm';

export interface ForwardInput {
  inputIds: IdsLike;
  /** 1 = attend, 0 = padding; defaults to all ones. */
  attentionMask?: IdsLike;
  /** true while training: enables LoRA dropout. */
  training?: boolean;
  /**
   * Masked LM only: the flattened positions (row · T + column) the head is
   * applied to; logits come back as [1, N, V], one row per position. At 15%
   * masking the [B·T, V] logits of every position are most of a small
   * encoder's head cost, and only the masked rows carry a loss.
   */
  headRows?: tf.Tensor1D;
}

export interface ForwardOutput {
  /** causal and masked LM: [B, T, V]; sequence classification: [B, numLabels]. */
  logits: tf.Tensor;
}

/**
 * What every architecture exposes. Base weights are plain (frozen) tensors;
 * only adapter parameters are tf.Variables, so gradients never touch W.
 */
export interface Model {
  readonly family: Family;
  readonly task: Task;
  readonly config: ModelConfig;
  readonly numLayers: number;
  /** HF module path in the task model (e.g. `transformer.h.0.attn.c_attn`) -> projection. */
  readonly linears: Map<string, Linear>;
  /** Modules PEFT can copy into `modules_to_save` (e.g. `classifier`), path -> their linears. */
  readonly heads: Map<string, Map<string, Linear>>;
  forward(input: ForwardInput): ForwardOutput;
  /** HF's own loss for this head: shifted CE ignoring -100 (causal LM), CE ignoring -100 (masked LM), CE or MSE (classification). */
  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar;
  /** every base tensor under its Hugging Face checkpoint name (what saveModel writes; what full fine-tuning swaps for variables) */
  weights(): Map<string, WeightRef>;
  /** Number of base (frozen) parameters. */
  baseParameterCount(): number;
  dispose(): void;
}

export interface ModelConfig {
  modelType: Family;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  maxPositions: number;
  eps: number;
  activation: string;
  numLabels: number;
  padTokenId: number | null;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** the parsed config.json, for fields we do not model. */
  raw: Record<string, unknown>;
}
