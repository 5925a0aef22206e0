/**
 * What a batch must be before it reaches the model. Without these checks a
 * class label outside the head is a one-hot of zeros (a finite, wrong loss),
 * a labels tensor wider than inputIds is sliced to fit, and a batch whose
 * labels are all -100 has loss 0 while weight decay still moves every weight.
 *
 * Host arrays (what the collate functions produce) are checked here, before
 * anything is uploaded. Tensors are checked on the device by a few
 * reductions that the trainer reads together with the loss, so the GPU path
 * pays no extra round trip; only a batch found bad pays a second read, to
 * name the offending value.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX } from '../backend/labels.js';
import { batchCounts, invalidIds, invalidLabels, invalidMask, lossLabels } from '../backend/ops.js';
import { isRegression } from '../models/heads.js';
import type { Model } from '../models/types.js';
import { closest, describeValue, isPlainObject } from '../util/options.js';
import type { Batch } from '../data/batch.js';

/** A batch that cannot be trained or evaluated on; `field` is e.g. `labels[1]`. */
export class BatchError extends Error {
  constructor(public readonly where: string, public readonly field: string, public readonly problem: string) {
    super(`${where}: batch.${field} ${problem}`);
    this.name = 'BatchError';
  }
}

const BATCH_KEYS = ['inputIds', 'attentionMask', 'labels', 'headRows'];

export interface BatchInfo {
  rows: number;
  cols: number;
  /** a part is a tensor: its values are checked on the device (deviceBatchCheck) */
  onDevice: boolean;
}

type Grid = ArrayLike<ArrayLike<number>>;
const isGrid = (x: unknown): x is Grid => Array.isArray(x) && x.every((r) => Array.isArray(r) || ArrayBuffer.isView(r));
const isList = (x: unknown): x is ArrayLike<number> => (Array.isArray(x) && !x.some((v) => Array.isArray(v) || ArrayBuffer.isView(v))) || (ArrayBuffer.isView(x) && !(x instanceof DataView));

/** what a label must be, for messages and for the host check */
function labelRule(model: Model): { test: (v: number) => boolean; expected: string } {
  if (model.task !== 'seq-cls') {
    const V = model.config.vocabSize;
    return { test: (v) => v === IGNORE_INDEX || (Number.isInteger(v) && v >= 0 && v < V), expected: `a token id in [0, ${V}) (the vocabulary) or ${IGNORE_INDEX} (ignored)` };
  }
  if (isRegression(model)) return { test: (v) => Number.isFinite(v), expected: 'a finite number (the head has 1 label: regression)' };
  const n = model.config.numLabels;
  return { test: (v) => v === IGNORE_INDEX || (Number.isInteger(v) && v >= 0 && v < n), expected: `a class id in [0, ${n}) (the head has ${n} labels) or ${IGNORE_INDEX} (ignored)` };
}

function shapeOf(where: string, field: string, x: unknown, rank: 1 | 2): number[] {
  if (x instanceof tf.Tensor) {
    if (x.isDisposed) throw new BatchError(where, field, 'is a disposed tensor');
    if (x.rank !== rank) throw new BatchError(where, field, `has shape [${x.shape}], expected rank ${rank}`);
    return x.shape;
  }
  if (rank === 2) {
    if (!isGrid(x) || x.length === 0) throw new BatchError(where, field, `must be a non-empty array of rows (or a rank-2 tensor), got ${describeValue(x)}`);
    const T = x[0].length;
    for (let i = 0; i < x.length; i++) if (x[i].length !== T) throw new BatchError(where, `${field}[${i}]`, `has length ${x[i].length}, expected ${T} like row 0 (pad the batch first)`);
    return [x.length, T];
  }
  if (!isList(x)) throw new BatchError(where, field, `must be an array of numbers (or a rank-1 tensor), got ${describeValue(x)}`);
  return [x.length];
}

/** first element of a host grid or list failing `test`, as [field suffix, value] */
function firstBad(x: Grid | ArrayLike<number>, test: (v: number, i: number, j: number) => boolean): [string, unknown] | undefined {
  for (let i = 0; i < x.length; i++) {
    const r = x[i] as unknown;
    if (typeof r === 'object' && r !== null && 'length' in (r as object)) {
      const row = r as ArrayLike<unknown>;
      for (let j = 0; j < row.length; j++) if (typeof row[j] !== 'number' || !test(row[j] as number, i, j)) return [`[${i}][${j}]`, row[j]];
    } else if (typeof r !== 'number' || !test(r, i, -1)) return [`[${i}]`, r];
  }
  return undefined;
}

/**
 * Everything about a batch that can be known on the host: its keys, shapes,
 * and the values of every part given as arrays. `training` also refuses a
 * batch with no label to learn from.
 */
export function checkBatch(where: string, batch: unknown, model: Model, training: boolean): BatchInfo {
  if (!isPlainObject(batch)) throw new BatchError(where, '', `must be an object { inputIds, attentionMask?, labels }, got ${describeValue(batch)}`);
  for (const k of Object.keys(batch)) {
    if (!BATCH_KEYS.includes(k)) throw new BatchError(where, k, `is not a batch field; did you mean "${closest(k, BATCH_KEYS)}"? (valid: ${BATCH_KEYS.join(', ')})`);
  }
  const b = batch as unknown as Batch;
  if (b.inputIds === undefined) throw new BatchError(where, 'inputIds', 'is missing');
  if (b.labels === undefined) throw new BatchError(where, 'labels', 'is missing');
  const [B, T] = shapeOf(where, 'inputIds', b.inputIds, 2);
  if (T === 0) throw new BatchError(where, 'inputIds', 'has rows of length 0');
  let onDevice = b.inputIds instanceof tf.Tensor;
  const V = model.config.vocabSize;
  if (!onDevice) {
    const bad = firstBad(b.inputIds as Grid, (v) => Number.isInteger(v) && v >= 0 && v < V);
    if (bad) throw new BatchError(where, `inputIds${bad[0]}`, `is ${describeValue(bad[1])}, expected a token id in [0, ${V}) (the vocabulary)`);
  }
  if (b.attentionMask !== undefined) {
    const [mB, mT] = shapeOf(where, 'attentionMask', b.attentionMask, 2);
    if (mB !== B || mT !== T) throw new BatchError(where, 'attentionMask', `has shape [${mB}, ${mT}], expected [${B}, ${T}] like inputIds`);
    if (b.attentionMask instanceof tf.Tensor) onDevice = true;
    else {
      const bad = firstBad(b.attentionMask as Grid, (v) => v === 0 || v === 1);
      if (bad) throw new BatchError(where, `attentionMask${bad[0]}`, `is ${describeValue(bad[1])}, expected 0 (padding) or 1 (token)`);
    }
  }
  // causal and masked LMs label every token; only the causal one shifts
  const perToken = model.task !== 'seq-cls';
  const causal = model.task === 'causal-lm';
  const labelShape = shapeOf(where, 'labels', b.labels, perToken ? 2 : 1);
  const want = perToken ? [B, T] : [B];
  if (labelShape.some((d, i) => d !== want[i])) {
    throw new BatchError(where, 'labels', `has shape [${labelShape}], expected [${want}] (${perToken ? 'one label per token of inputIds' : 'one label per row of inputIds'})`);
  }
  if (b.labels instanceof tf.Tensor) onDevice = true;
  else {
    const rule = labelRule(model);
    const bad = firstBad(b.labels as Grid | number[], (v) => rule.test(v));
    if (bad) throw new BatchError(where, `labels${bad[0]}`, `is ${describeValue(bad[1])}, expected ${rule.expected}`);
    if (training && lossLabelsOnHost(b.labels as Grid | number[], model) === 0) throw nothingToLearn(where, causal);
  }
  if (b.headRows !== undefined) checkHeadRows(where, b, model, B, T);
  return { rows: B, cols: T, onDevice };
}

/** headRows: host positions in [0, B·T) that cover every labelled position of host labels */
function checkHeadRows(where: string, b: Batch, model: Model, B: number, T: number): void {
  if (model.task !== 'masked-lm') throw new BatchError(where, 'headRows', `is for a masked LM, whose loss is at the masked positions only; this model's task is "${model.task}", which ${model.task === 'causal-lm' ? 'predicts at every position' : 'predicts once a row'}`);
  const rows = b.headRows as unknown;
  if (rows instanceof tf.Tensor) throw new BatchError(where, 'headRows', 'must be host positions (number[] or Int32Array), not a tensor: every labelled position is checked on the host to be among them');
  if (!isList(rows) || rows.length === 0) throw new BatchError(where, 'headRows', `must be a non-empty array of positions (row · ${T} + column), got ${describeValue(rows)}`);
  if (!Array.isArray(b.labels) || !isGrid(b.labels)) throw new BatchError(where, 'labels', 'must be host rows when headRows is given (every labelled position is checked to be among headRows)');
  const covered = new Uint8Array(B * T);
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= B * T) throw new BatchError(where, `headRows[${i}]`, `is ${describeValue(v)}, expected a position in [0, ${B * T}) (row · ${T} + column of inputIds)`);
    covered[v] = 1;
  }
  const labels = b.labels as Grid;
  for (let r = 0; r < B; r++) {
    const row = labels[r]!;
    for (let t = 0; t < T; t++) {
      if (row[t] !== IGNORE_INDEX && !covered[r * T + t]) throw new BatchError(where, 'headRows', `leaves out position ${r * T + t} (labels[${r}][${t}] = ${row[t]}): every labelled position must be among headRows, or its loss would be dropped`);
    }
  }
}

/**
 * The labels that carry a loss, the weight of a batch's mean loss: every
 * example of a regression, else those that are not IGNORE_INDEX, and for a
 * causal LM only from the second position on (labels shift by one, so
 * position 0 predicts nothing). On the device, as a float32 scalar.
 */
export function lossLabelCount(labels: tf.Tensor, model: Model): tf.Scalar {
  return lossLabels(labels, { regression: isRegression(model), skipFirst: model.task === 'causal-lm' });
}

/** lossLabelCount of host labels */
function lossLabelsOnHost(labels: Grid | ArrayLike<number>, model: Model): number {
  if (isRegression(model)) return labels.length;
  const first = model.task === 'causal-lm' ? 1 : 0;
  let n = 0;
  if (model.task !== 'seq-cls') for (const row of Array.from(labels as Grid)) for (let j = first; j < row.length; j++) n += row[j] !== IGNORE_INDEX ? 1 : 0;
  else for (const v of Array.from(labels as ArrayLike<number>)) n += v !== IGNORE_INDEX ? 1 : 0;
  return n;
}

export const nothingToLearn = (where: string, causal: boolean) => new BatchError(where, 'labels', causal
  ? `are all ${IGNORE_INDEX} after the first token: no token to predict, so the loss is 0 and an update would only apply weight decay; drop the batch`
  : `are all ${IGNORE_INDEX}: no example to learn from, so the loss is 0 and an update would only apply weight decay; drop the batch`);

/**
 * For a batch with tensor parts: [bad input ids, bad attention-mask values,
 * bad labels, labels that carry a loss], computed on the device and read by
 * the caller with the loss. Undefined when every part is a host array.
 */
export function deviceBatchCheck(batch: Batch, model: Model): tf.Tensor1D | undefined {
  const { inputIds, attentionMask, labels } = batch;
  if (!(inputIds instanceof tf.Tensor) && !(attentionMask instanceof tf.Tensor) && !(labels instanceof tf.Tensor)) return undefined;
  const t = (x: unknown) => (x instanceof tf.Tensor ? x : undefined);
  return batchCounts(t(inputIds), t(attentionMask), t(labels), {
    vocab: model.config.vocabSize, labelRange: labelRange(model), regression: isRegression(model), skipFirst: model.task === 'causal-lm',
  });
}

const labelRange = (model: Model): number => (model.task === 'seq-cls' ? model.config.numLabels : model.config.vocabSize);
const badLabels = (labels: tf.Tensor, model: Model): tf.Tensor => invalidLabels(labels, { range: labelRange(model), regression: isRegression(model) });

/**
 * A device check came back non-zero: find the first offending value (a
 * second read, on the failure path only) and throw the same BatchError the
 * host check would have.
 */
export async function failDeviceCheck(where: string, batch: Batch, model: Model, counts: ArrayLike<number>, training: boolean): Promise<void> {
  const [ids, mask, lab, learn] = Array.from(counts);
  const first = async (field: string, t: tf.Tensor, flag: () => tf.Tensor, expected: string): Promise<never> => {
    const bad = tf.tidy(flag);
    const [flags, values] = await Promise.all([bad.data(), t.data()]);
    bad.dispose();
    const k = flags.findIndex((f) => f !== 0);
    const at = t.rank === 2 ? `[${Math.floor(k / t.shape[1]!)}][${k % t.shape[1]!}]` : `[${k}]`;
    throw new BatchError(where, `${field}${at}`, `is ${describeValue(values[k])}, expected ${expected}`);
  };
  const V = model.config.vocabSize;
  if (ids) await first('inputIds', batch.inputIds as tf.Tensor, () => invalidIds(batch.inputIds as tf.Tensor, V), `a token id in [0, ${V}) (the vocabulary)`);
  if (mask) {
    const m = batch.attentionMask as tf.Tensor;
    await first('attentionMask', m, () => invalidMask(m), '0 (padding) or 1 (token)');
  }
  if (lab) await first('labels', batch.labels as tf.Tensor, () => badLabels(batch.labels as tf.Tensor, model), labelRule(model).expected);
  if (training && learn === 0) throw nothingToLearn(where, model.task === 'causal-lm');
}

/** the device counts say the batch is fine */
export const deviceCheckPassed = (counts: ArrayLike<number>, training: boolean): boolean =>
  counts[0] === 0 && counts[1] === 0 && counts[2] === 0 && (!training || counts[3] > 0);
