/**
 * What the architectures share on top of their blocks: the decoders' `score`
 * head and the last-token pooling it reads, the LM head's product with the
 * (often tied) embedding matrix, and Hugging Face's loss for each task.
 */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy } from '../backend/ops.js';
import { IGNORE_INDEX } from '../backend/labels.js';
import { Linear } from './linear.js';
import type { Model, ModelConfig } from './types.js';
import type { WeightStore } from './weights.js';

/**
 * GPT-2's and LLaMA's classification head `score` ([labels, C], no bias):
 * the checkpoint's, else the initial one the loader drew for it.
 */
export function scoreHead(model: string, config: ModelConfig, w: WeightStore, init?: tf.Tensor2D): Linear {
  const sw = w.has('score.weight') ? w.take('score.weight', [config.numLabels, config.hidden]) as tf.Tensor2D : init;
  if (!sw) throw new Error(`${model} classification needs a score head (score.weight) in the checkpoint or an initial one`);
  return new Linear('score', sw, undefined, 'out_in');
}

/** Hidden state at each row's last attended position (HF's sequence-classification pooling for decoders). */
export function lastToken(x: tf.Tensor, mask: tf.Tensor2D | undefined): tf.Tensor2D {
  const [B, T] = x.shape;
  const last = mask ? tf.cast(tf.sub(tf.sum(mask, 1), 1), 'int32') : tf.fill([B], T - 1, 'int32');
  // a one-hot weighted sum, not gather: its gradient stays a product on every backend (gather's is UnsortedSegmentSum, on wasm a JS loop: src/backend/wasm-segment-sum.ts)
  const pick = tf.expandDims(tf.oneHot(last as tf.Tensor1D, T), -1); // [B,T,1]
  return tf.sum(tf.mul(x, pick), 1) as tf.Tensor2D;
}

/** Logits [B, T, V] from hidden states [B, T, C] and a [V, C] matrix (the word embeddings when tied). */
export function lmLogits(x: tf.Tensor, W: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor3D {
  const [B, T, C] = x.shape;
  const flat = tf.matMul(tf.reshape(x, [B * T, C]), W, false, true);
  return tf.reshape(bias ? tf.add(flat, bias) : flat, [B, T, W.shape[0]]);
}

/** HF's causal-LM loss: position t predicts label t+1; IGNORE_INDEX (-100) is ignored. */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    // shift the labels, not the logits: position t predicts label t+1 and the
    // last position is ignored (-100), so the [B, T, V] logits are never
    // copied (a slice and its gradient's pad were 2 × 400 MB at GPT-2 scale)
    const y = tf.concat([tf.slice(tf.cast(labels, 'int32'), [0, 1], [B, T - 1]), tf.fill([B, 1], IGNORE_INDEX, 'int32')], 1);
    return crossEntropy(tf.reshape(logits, [B * T, V]) as tf.Tensor2D, tf.reshape(y, [B * T]) as tf.Tensor1D);
  });
}

/** HF's masked-LM loss: cross-entropy at every position whose label is not -100 (no shift). */
export function maskedLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    return crossEntropy(tf.reshape(logits, [B * T, V]) as tf.Tensor2D, tf.reshape(tf.cast(labels, 'int32'), [B * T]) as tf.Tensor1D);
  });
}

/** what decides a model's loss: its task and, for a classifier, its number of labels */
export type Head = Pick<Model, 'task'> & { readonly config: Pick<ModelConfig, 'numLabels'> };

/** HF's problem_type inference: a sequence classifier with one label is a regressor (MSE on float targets), with more single-label CE. */
export const isRegression = (model: Head): boolean => model.task === 'seq-cls' && model.config.numLabels === 1;

/** The loss HF computes for a model of this task. */
export function taskLoss(model: Head, logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (model.task === 'causal-lm') return causalLmLoss(logits, labels);
  if (model.task === 'masked-lm') return maskedLmLoss(logits, labels);
  return tf.tidy(() => {
    if (isRegression(model)) return tf.mean(tf.square(tf.sub(tf.reshape(logits, [-1]), tf.cast(tf.reshape(labels, [-1]), 'float32')))) as tf.Scalar;
    return crossEntropy(logits as tf.Tensor2D, tf.reshape(tf.cast(labels, 'int32'), [-1]) as tf.Tensor1D);
  });
}
