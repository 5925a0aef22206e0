/**
 * Full fine-tuning: every base tensor becomes a trainable variable. The
 * baseline LoRA and ShareLoRA are measured against (parameters, memory,
 * accuracy), and how the embedded model in data/ was pretrained.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/types.js';
import { uniqueVariableName } from '../util/rng.js';
import { checkOptions, describeValue, optionKeys, OptionsError } from '../util/options.js';

export interface FullFineTuneOptions {
  /** train only the weights whose names match (the rest stay frozen) */
  include?: RegExp;
  /** train only the task head (`score` of GPT-2 and LLaMA, `classifier` of RoBERTa): a linear probe, whatever the architecture */
  head?: boolean;
}

export class FullFineTune {
  private readonly params = new Map<string, tf.Variable>();
  dropoutCounter = 0;

  constructor(readonly model: Model, opts: FullFineTuneOptions = {}) {
    checkOptions('fullFineTune', opts, optionKeys<FullFineTuneOptions>()(['include', 'head']));
    if (opts.include !== undefined && !(opts.include instanceof RegExp)) throw new OptionsError('fullFineTune', 'include', `must be a RegExp over weight names, got ${describeValue(opts.include)}`);
    if (opts.head !== undefined && typeof opts.head !== 'boolean') throw new OptionsError('fullFineTune', 'head', `must be true or false, got ${describeValue(opts.head)}`);
    if (opts.head && opts.include) throw new OptionsError('fullFineTune', 'head', 'and "include" both choose the weights to train: give one');
    const heads = [...model.heads.keys()];
    if (opts.head && heads.length === 0) throw new OptionsError('fullFineTune', 'head', `this ${model.family} model has no task head (load it with a task such as { task: 'seq-cls' })`);
    const chosen = (name: string) => (opts.head ? heads.some((h) => name.startsWith(`${h}.`)) : !opts.include || opts.include.test(name));
    const names = [...model.weights().keys()];
    // a pattern that matches nothing would leave the trainer with no variables and fail far from here
    if (!names.some(chosen)) throw new OptionsError('fullFineTune', opts.head ? 'head' : 'include', `${opts.head ? `the task head (${heads.join(', ')})` : opts.include} matches none of this ${model.family} model's ${names.length} weights (${names.slice(0, 3).join(', ')}, …${heads.length ? `; its task head: ${heads.join(', ')}, or pass { head: true }` : ''})`);
    for (const [name, ref] of model.weights()) {
      if (!chosen(name)) continue;
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

export function fullFineTune(model: Model, opts: FullFineTuneOptions = {}): FullFineTune {
  return new FullFineTune(model, opts);
}
