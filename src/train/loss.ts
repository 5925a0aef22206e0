import * as tf from '@tensorflow/tfjs-core';
/** What training needs from an adapter (ShareLoraAdapter, or full fine-tuning). */
export interface Trainable {
  namedParameters(): Map<string, tf.Variable>;
  /** dropout masks drawn so far (saved with checkpoints) */
  dropoutCounter?: number;
}
import { installEagerRelease } from '../backend/tape.js';
import { toInt2D } from '../models/inputs.js';
import type { IdsLike, Model } from '../models/types.js';

export interface Batch {
  inputIds: IdsLike;
  attentionMask?: IdsLike;
  /** causal LM: [B, T] ids with -100 ignored; classification: [B] class ids (or floats for regression) */
  labels: tf.Tensor | number[] | number[][];
}

export function labelsTensor(labels: Batch['labels'], model: Model): tf.Tensor {
  if (labels instanceof tf.Tensor) return tf.clone(labels);
  if (model.task === 'causal-lm' || model.task === 'masked-lm') return toInt2D(labels as number[][], 'labels');
  return model.config.numLabels === 1 ? tf.tensor1d(labels as number[], 'float32') : tf.tensor1d(labels as number[], 'int32');
}

export interface LossAndGrads {
  loss: number;
  /** PEFT parameter name -> gradient; a tied tensor once, under its first layer's name */
  grads: Map<string, tf.Tensor>;
}

/**
 * The model's own loss on a batch and its gradient for every adapter
 * parameter. The caller owns (and must dispose) the returned gradients.
 * Async because GPU backends (webgpu) can only read results back asynchronously.
 */
export async function lossAndGrads(model: Model, adapter: Trainable, batch: Batch, opts: { training?: boolean } = {}): Promise<LossAndGrads> {
  const { loss, grads } = lossAndGradTensors(model, adapter, batch, opts);
  const value = (await loss.data())[0];
  loss.dispose();
  return { loss: value, grads };
}

/**
 * lossAndGrads without reading the loss back: the Trainer reads it together
 * with the gradient statistics, one GPU round trip a step instead of two.
 * The caller owns the loss scalar and the gradients.
 */
export function lossAndGradTensors(model: Model, adapter: Trainable, batch: Batch, opts: { training?: boolean } = {}): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  installEagerRelease();
  const named = adapter.namedParameters();
  const vars = [...named.values()];
  const labels = labelsTensor(batch.labels, model);
  try {
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, training: opts.training ?? false });
      return model.loss(logits, labels);
    }, vars);
    const out = new Map<string, tf.Tensor>();
    for (const [name, v] of named) out.set(name, grads[v.name]);
    return { loss: value, grads: out };
  } finally {
    labels.dispose();
  }
}

/** Mean loss over a batch without gradients. */
export async function evalLoss(model: Model, batch: Batch): Promise<number> {
  const loss = tf.tidy(() => {
    const labels = labelsTensor(batch.labels, model);
    const { logits } = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask });
    return model.loss(logits, labels);
  });
  const v = (await loss.data())[0];
  loss.dispose();
  return v;
}
