/**
 * Full fine-tuning: every base tensor becomes a trainable variable. The
 * baseline LoRA and ShareLoRA are measured against (parameters, memory,
 * accuracy), and how the embedded model in data/ was pretrained.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/types.js';
import { uniqueVariableName } from '../util/rng.js';

export class FullFineTune {
  private readonly params = new Map<string, tf.Variable>();
  dropoutCounter = 0;

  constructor(readonly model: Model, opts: { include?: RegExp } = {}) {
    for (const [name, ref] of model.weights()) {
      if (opts.include && !opts.include.test(name)) continue;
      const v = tf.variable(ref.get(), true, uniqueVariableName(`full.${name}`));
      ref.get().dispose();
      ref.set(v);
      this.params.set(name, v);
    }
  }

  namedParameters(): Map<string, tf.Variable> {
    return new Map(this.params);
  }

  trainableParameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Turn the variables back into frozen tensors holding the trained values. */
  freeze(): void {
    const refs = this.model.weights();
    for (const [name, v] of this.params) {
      refs.get(name)!.set(tf.clone(v));
      v.dispose();
    }
    this.params.clear();
  }
}

export function fullFineTune(model: Model, opts: { include?: RegExp } = {}): FullFineTune {
  return new FullFineTune(model, opts);
}
