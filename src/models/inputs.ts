import * as tf from '@tensorflow/tfjs-core';
import type { IdsLike } from './types.js';

/** Accept tensors or nested arrays for ids/masks; always int32 [B, T]. */
export function toInt2D(x: IdsLike, what: string): tf.Tensor2D {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what} must be rank 2 [batch, seq], got shape [${x.shape}]`);
    return (x.dtype === 'int32' ? tf.clone(x) : tf.cast(x, 'int32')) as tf.Tensor2D;
  }
  const rows = x as ArrayLike<number>[];
  if (!rows.length) throw new Error(`${what} is empty`);
  const T = rows[0].length;
  const flat = new Int32Array(rows.length * T);
  rows.forEach((r, i) => {
    if (r.length !== T) throw new Error(`${what}: row ${i} has length ${r.length}, expected ${T} (pad the batch first)`);
    for (let j = 0; j < T; j++) flat[i * T + j] = r[j];
  });
  return tf.tensor2d(flat, [rows.length, T], 'int32');
}
