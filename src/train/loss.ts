import * as tf from '@tensorflow/tfjs-core';
/** What training needs from an adapter (ShareLoraAdapter, or full fine-tuning). */
export interface Trainable {
  namedParameters(): Map<string, tf.Variable>;
  /** dropout masks drawn so far (saved with checkpoints) */
  dropoutCounter?: number;
}
import { installEagerRelease } from '../backend/tape.js';
import { checkBatch } from './batch.js';
import { checkOptions } from '../util/options.js';
import { toHeadRows, toLabelTensor, type Batch } from '../data/batch.js';
import { isRegression } from '../models/heads.js';
import type { Model } from '../models/types.js';

export type { Batch };

/** Labels in the dtype the model's loss takes: float32 for regression, int32 otherwise. */
export function labelsTensor(labels: Batch['labels'], model: Model): tf.Tensor {
  return toLabelTensor(labels, isRegression(model) ? 'float32' : 'int32');
}

/**
 * The model's logits and the labels they line up with: with headRows, the
 * masked LM's head on those rows only ([1, N, V]) and the labels gathered at
 * them ([1, N]); the cross-entropy over them is the full one's, since every
 * other position is ignored. Call inside a tidy.
 */
export function forwardForLoss(model: Model, batch: Batch, labels: tf.Tensor, training: boolean): { logits: tf.Tensor; labels: tf.Tensor } {
  if (batch.headRows === undefined) return { logits: model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, training }).logits, labels };
  const rows = batch.headRows instanceof tf.Tensor ? batch.headRows as tf.Tensor1D : toHeadRows(batch.headRows);
  const { logits } = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, training, headRows: rows });
  return { logits, labels: tf.reshape(tf.gather(tf.reshape(labels, [-1]), rows), [1, rows.shape[0]]) };
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
  checkOptions('lossAndGrads', opts, ['training']);
  checkBatch('lossAndGrads', batch, model, false);
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
  // the tape's saved activations are kept outside every tidy (the backward
  // pass frees them); a forward or backward that throws never gets there, so
  // this frees them itself: 61-405 tensors a failed call otherwise
  let tape: Array<{ saved?: tf.Tensor[] }> | null = null;
  try {
    // the tidy frees the loss and any gradient made before a failure; on success it keeps what it returns
    const [value, ...grads] = tf.tidy(() => {
      const labels = labelsTensor(batch.labels, model);
      const r = tf.variableGrads(() => {
        tape = (tf.engine() as unknown as { state: { activeTape: typeof tape } }).state.activeTape;
        const f = forwardForLoss(model, batch, labels, opts.training ?? false);
        return model.loss(f.logits, f.labels);
      }, vars);
      return [r.value, ...vars.map((v) => r.grads[v.name])];
    });
    const out = new Map<string, tf.Tensor>();
    [...named.keys()].forEach((name, i) => out.set(name, grads[i]));
    return { loss: value as tf.Scalar, grads: out };
  } catch (e) {
    for (const node of (tape as Array<{ saved?: tf.Tensor[] }> | null) ?? []) tf.dispose(node.saved ?? []);
    throw e;
  }
}

/** Mean loss over a batch without gradients. */
export async function evalLoss(model: Model, batch: Batch): Promise<number> {
  checkBatch('evalLoss', batch, model, false);
  const loss = tf.tidy(() => {
    const f = forwardForLoss(model, batch, labelsTensor(batch.labels, model), false);
    return model.loss(f.logits, f.labels);
  });
  const v = (await loss.data())[0];
  loss.dispose();
  return v;
}
