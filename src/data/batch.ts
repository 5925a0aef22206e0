/**
 * The one batch shape, from the collate functions through the trainer to the
 * model, and its one conversion to tf tensors. Ids and masks become int32
 * (what tf.gather and the embedding layers take); labels are int32 unless the
 * task is regression. Converting needs a registered tfjs backend.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Token ids or a mask [B, T]: a tensor or host rows. */
export type IdsLike = tf.Tensor2D | number[][] | Int32Array[];

export interface Batch {
  inputIds: IdsLike;
  /** 1 = attend, 0 = padding; defaults to all ones. */
  attentionMask?: IdsLike;
  /** causal and masked LM: [B, T] ids with -100 ignored; classification: [B] class ids (or floats for regression) */
  labels: tf.Tensor | number[] | number[][];
  /**
   * Masked LM only: the flattened positions (row · T + column) the head runs
   * on. Every labelled position must be one of them; the rest (a fixed count
   * keeps the step's shapes, and so its replay, the same from batch to batch)
   * repeat a position whose label is -100. Same loss and gradients as without.
   * Host positions (collateMaskedLM's `headRows: true` makes them); a tensor only inside the trainer's step replay.
   */
  headRows?: number[] | Int32Array | tf.Tensor1D;
}

/** A batch as the collate functions build it: host rows, padded on the right, with their mask. */
export interface HostBatch extends Batch {
  inputIds: number[][];
  attentionMask: number[][];
  /** Per-token for LMs, one per row for classification / regression. */
  labels: number[][] | number[];
}

export interface BatchTensors {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  labels: tf.Tensor2D | tf.Tensor1D;
}

type Rows = ArrayLike<ArrayLike<number>>;
const isRow = (x: unknown): x is ArrayLike<number> => Array.isArray(x) || ArrayBuffer.isView(x);

/** Rows of one length, flattened for a single upload. */
function int32Rows(rows: Rows, what: string): { data: Int32Array; shape: [number, number] } {
  const b = rows.length;
  const n = rows[0]?.length ?? 0;
  const data = new Int32Array(b * n);
  for (let i = 0; i < b; i++) {
    const r = rows[i];
    if (r.length !== n) throw new RangeError(`${what}: row ${i} has ${r.length} entries, row 0 has ${n}; pad the batch first`);
    data.set(r, i * n);
  }
  return { data, shape: [b, n] };
}

/** Ids or a mask as int32 [B, T]. A tensor is cast or cloned, so the caller always owns the result. */
export function toInt2D(x: IdsLike, what: string): tf.Tensor2D {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what} must be rank 2 [batch, seq], got shape [${x.shape}]`);
    return (x.dtype === 'int32' ? tf.clone(x) : tf.cast(x, 'int32')) as tf.Tensor2D;
  }
  if (!x.length) throw new Error(`${what} is empty`);
  const { data, shape } = int32Rows(x, what);
  return tf.tensor2d(data, shape, 'int32');
}

/** headRows as the int32 [N] tensor forward() takes */
export function toHeadRows(rows: ArrayLike<number>): tf.Tensor1D {
  return tf.tensor1d(Int32Array.from(rows), 'int32');
}

/** Labels as a tensor: rows [B, T] or values [B] in `dtype`; a tensor is cloned as it is. */
export function toLabelTensor(labels: Batch['labels'], dtype: 'int32' | 'float32'): tf.Tensor2D | tf.Tensor1D {
  if (labels instanceof tf.Tensor) return tf.clone(labels) as tf.Tensor2D | tf.Tensor1D;
  if (labels.length > 0 && isRow(labels[0])) {
    const l = int32Rows(labels as Rows, 'labels');
    return tf.tensor2d(dtype === 'int32' ? l.data : Float32Array.from(l.data), l.shape, dtype);
  }
  const l = labels as number[];
  if (dtype === 'int32' && l.some((v) => !Number.isInteger(v))) throw new RangeError('labels are not integers; pass labelDtype: "float32" for regression');
  return tf.tensor1d(dtype === 'int32' ? Int32Array.from(l) : Float32Array.from(l), dtype);
}

/** The caller owns the tensors (dispose them, or create them inside tf.tidy). */
export function toTensors(batch: HostBatch, opts: { labelDtype?: 'int32' | 'float32' } = {}): BatchTensors {
  const ids = int32Rows(batch.inputIds, 'inputIds');
  const mask = int32Rows(batch.attentionMask, 'attentionMask');
  if (mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
    throw new RangeError(`attentionMask shape [${mask.shape}] differs from inputIds [${ids.shape}]`);
  }
  const labels = toLabelTensor(batch.labels, opts.labelDtype ?? 'int32');
  return { inputIds: tf.tensor2d(ids.data, ids.shape, 'int32'), attentionMask: tf.tensor2d(mask.data, mask.shape, 'int32'), labels };
}
