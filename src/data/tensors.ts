/**
 * Batches as tf tensors. Ids and masks are int32 (what tf.gather and the
 * embedding layers take); labels are int32 unless the task is regression.
 * Needs a registered tfjs backend (the backend module sets one up).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './collate.js';

export interface BatchTensors {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  labels: tf.Tensor2D | tf.Tensor1D;
}

function flat2d(rows: number[][], what: string): { data: Int32Array; shape: [number, number] } {
  const b = rows.length;
  const n = rows[0]?.length ?? 0;
  const data = new Int32Array(b * n);
  rows.forEach((r, i) => {
    if (r.length !== n) throw new RangeError(`${what}: row ${i} has ${r.length} entries, row 0 has ${n}; pad the batch first`);
    data.set(r, i * n);
  });
  return { data, shape: [b, n] };
}

/** The caller owns the tensors (dispose them, or create them inside tf.tidy). */
export function toTensors(batch: Batch, opts: { labelDtype?: 'int32' | 'float32' } = {}): BatchTensors {
  const ids = flat2d(batch.inputIds, 'inputIds');
  const mask = flat2d(batch.attentionMask, 'attentionMask');
  if (mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
    throw new RangeError(`attentionMask shape [${mask.shape}] differs from inputIds [${ids.shape}]`);
  }
  const dtype = opts.labelDtype ?? 'int32';
  let labels: tf.Tensor2D | tf.Tensor1D;
  if (batch.labels.length > 0 && Array.isArray(batch.labels[0])) {
    const l = flat2d(batch.labels as number[][], 'labels');
    labels = tf.tensor2d(dtype === 'int32' ? l.data : Float32Array.from(l.data), l.shape, dtype);
  } else {
    const l = batch.labels as number[];
    if (dtype === 'int32' && l.some((v) => !Number.isInteger(v))) throw new RangeError('labels are not integers; pass labelDtype: "float32" for regression');
    labels = tf.tensor1d(dtype === 'int32' ? Int32Array.from(l) : Float32Array.from(l), dtype);
  }
  return { inputIds: tf.tensor2d(ids.data, ids.shape, 'int32'), attentionMask: tf.tensor2d(mask.data, mask.shape, 'int32'), labels };
}
