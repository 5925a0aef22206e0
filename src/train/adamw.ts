/**
 * AdamW with torch.optim.AdamW's exact update order:
 *   p  <- p·(1 - lr·wd)                      (decoupled weight decay first)
 *   m  <- β1·m + (1-β1)·g;  v <- β2·v + (1-β2)·g²
 *   p  <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';
import { fused } from '../backend/webgpu/active.js';

export interface AdamWOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  /**
   * Apply one update; grads are keyed like params and multiplied by
   * gradScale first (the clipping coefficient). Does not dispose grads.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, gradScale = 1): void {
    this.step += 1;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    const stepSize = this.lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    // webgpu: one fused dispatch per parameter instead of ~13 ops (src/backend/webgpu/optim.ts)
    const fz = fused();
    for (const [name, p] of params) {
      const g0 = grads.get(name);
      if (!g0) continue;
      let g = g0;
      if (!this.m.has(name)) {
        // tidy frees the zeros; a variable holds its own reference to the data
        this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
        this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      }
      const m = this.m.get(name)!, v = this.v.get(name)!;
      if (fz) {
        tf.tidy(() => {
          const [p1, m1, v1] = fz.adamw(p, g, m, v, { decay: 1 - this.lr * this.weightDecay, beta1: this.beta1, beta2: this.beta2, eps: this.eps, stepSize, sqrtBc2, gscale: gradScale });
          m.assign(m1);
          v.assign(v1);
          p.assign(p1);
        });
        continue;
      }
      tf.tidy(() => {
        if (gradScale !== 1) g = tf.mul(g, gradScale);
        const decayed = this.weightDecay ? tf.mul(p, 1 - this.lr * this.weightDecay) : p;
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), this.eps);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)));
      });
    }
  }

  /** bytes held by the moments (2 × fp32 per trainable element) */
  stateBytes(): number {
    let n = 0;
    for (const t of this.m.values()) n += t.size * 8;
    return n;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
    this.m.clear();
    this.v.clear();
  }
}
