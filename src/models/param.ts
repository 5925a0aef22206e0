/**
 * A named base tensor the model reads at every forward. Holding tensors in
 * named boxes (not bare fields) lets full fine-tuning swap in tf.Variables and
 * saveModel() write every weight under its Hugging Face name.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Linear } from './linear.js';

export class Param<T extends tf.Tensor = tf.Tensor> {
  constructor(readonly name: string, public value: T) {}
}

export interface WeightRef { get(): tf.Tensor; set(t: tf.Tensor): void }

/** HF name -> accessor, for boxes and projections alike. */
export function weightRefs(params: Param[], linears: Iterable<Linear>): Map<string, WeightRef> {
  const out = new Map<string, WeightRef>();
  for (const p of params) out.set(p.name, { get: () => p.value, set: (t) => { p.value = t; } });
  for (const l of linears) {
    out.set(`${l.name}.weight`, { get: () => l.weight, set: (t) => { l.weight = t as tf.Tensor2D; } });
    if (l.bias) out.set(`${l.name}.bias`, { get: () => l.bias!, set: (t) => { l.bias = t as tf.Tensor1D; } });
  }
  return out;
}

export function countWeights(refs: Map<string, WeightRef>): number {
  let n = 0;
  for (const r of refs.values()) n += r.get().size;
  return n;
}

export function disposeWeights(refs: Map<string, WeightRef>): void {
  for (const r of refs.values()) r.get().dispose();
}
