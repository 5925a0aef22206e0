/**
 * A frozen projection y = x·W + b with W kept in its checkpoint's layout:
 * 'out_in' for nn.Linear ([out, in]), 'in_out' for HF's Conv1D (GPT-2), so
 * names, shapes and gradients line up with PyTorch's.
 * An adapter attaches itself as `lora`; this is the only hook it needs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gelu, geluLinear, linear, loraLinear, type DropoutSpec } from '../backend/ops.js';

export interface LoraHook {
  /**
   * The two factors of ΔW = scaling·B·A as this layer applies them: A [r, in]
   * and B [out, r] (PEFT's lora_A / lora_B weights, or, for the methods with
   * per-layer vectors, diag(u)·A and diag(v)·B). Called inside the forward,
   * so a product it makes is freed and differentiated with the rest.
   */
  factors(): [tf.Tensor2D, tf.Tensor2D];
  readonly scaling: number;
  readonly dropout: number;
  /** true while the update is folded into W */
  merged: boolean;
  enabled: boolean;
  nextSeed(): number;
  /** removes and frees the adapter this hook belongs to (its model is being disposed with the adapter still on) */
  release?(): void;
}

export class Linear {
  lora?: LoraHook;

  constructor(
    public readonly name: string,
    /** replaced (not mutated) by merge/unmerge */
    public weight: tf.Tensor2D,
    public bias: tf.Tensor1D | undefined,
    public readonly layout: 'out_in' | 'in_out' = 'out_in',
  ) {}

  get inFeatures(): number { return this.weight.shape[this.layout === 'in_out' ? 0 : 1]; }
  get outFeatures(): number { return this.weight.shape[this.layout === 'in_out' ? 1 : 0]; }

  /** x [..., in] -> [..., out] */
  apply(x: tf.Tensor, training = false): tf.Tensor {
    return this.onRows(x, (x2) => this.applyRows(x2, training));
  }

  /** f on x's rows [N, in], the result shaped back to [..., out] */
  private onRows(x: tf.Tensor, f: (x2: tf.Tensor2D) => tf.Tensor2D): tf.Tensor {
    const lead = x.shape.slice(0, -1);
    return tf.reshape(f(tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D), [...lead, this.outFeatures]);
  }

  /** x2 [N, in] -> [N, out]: apply() without its two Reshapes (each an engine op forward and one backward) */
  applyRows(x2: tf.Tensor2D, training = false): tf.Tensor2D {
    const l = this.lora;
    let y: tf.Tensor2D;
    if (l && l.enabled && !l.merged) {
      const drop: DropoutSpec | undefined = training && l.dropout > 0 ? { rate: l.dropout, seed: l.nextSeed() } : undefined;
      const [A, B] = l.factors();
      y = loraLinear(x2, this.weight, this.bias, A, B, l.scaling, drop, this.layout === 'out_in');
    } else {
      y = linear(x2, this.weight, this.bias, this.layout === 'out_in');
    }
    return y;
  }

  /**
   * gelu(h) [N, in] -> [N, out] (an MLP's second projection): one op with the GELU inside, unless an adapter is
   * active here (its low-rank path needs gelu(h) as a tensor, so the plain order runs).
   */
  applyRowsGelu(h2: tf.Tensor2D, kind: 'tanh' | 'erf', training = false): tf.Tensor2D {
    const l = this.lora;
    if (l && l.enabled && !l.merged) return this.applyRows(gelu(h2, kind) as tf.Tensor2D, training);
    return geluLinear(h2, this.weight, this.bias, kind, this.layout === 'out_in');
  }

  /** applyRowsGelu on h [..., in] */
  applyGelu(h: tf.Tensor, kind: 'tanh' | 'erf', training = false): tf.Tensor {
    return this.onRows(h, (h2) => this.applyRowsGelu(h2, kind, training));
  }

  parameterCount(): number {
    return this.weight.size + (this.bias?.size ?? 0);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}
