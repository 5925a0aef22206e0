/**
 * AdamW with torch.optim.AdamW's exact update order:
 *   p  <- p·(1 - lr·wd)                      (decoupled weight decay first)
 *   m  <- β1·m + (1-β1)·g;  v <- β2·v + (1-β2)·g²
 *   p  <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamwUpdate } from '../backend/ops.js';
import { resolveAdamW, type AdamWOptions } from './options.js';

export type { AdamWOptions } from './options.js';

/** float32 stays finite with room to spare below this (its largest value is 3.4e38) */
const SAFE = 1e30;
const FLT_MIN_NORMAL = 1.1754943508222875e-38;

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /**
   * @internal An upper bound on every |g| applied so far (after clipping),
   * hence on every |m| and √v: m and v are running averages of g and g².
   * Checkpoints restore it from the saved moments.
   */
  gradBound = 0;

  constructor(opts: AdamWOptions = {}) {
    const o = resolveAdamW('AdamW', opts);
    this.lr = o.lr;
    [this.beta1, this.beta2] = o.betas;
    this.eps = o.eps;
    this.weightDecay = o.weightDecay;
  }

  private hyper(gradScale: number) {
    const t = this.step + 1;
    const bc1 = 1 - this.beta1 ** t;
    return { t, decay: 1 - this.lr * this.weightDecay, stepSize: this.lr / bc1, sqrtBc2: Math.sqrt(1 - this.beta2 ** t), gscale: gradScale };
  }

  /**
   * Whether the next update is certainly finite, from host numbers alone:
   * with every |g| ≤ G, |m| ≤ G and v ≤ G², so |Δp| ≤ stepSize·G/eps. When
   * that is far below float32's range the update needs no check on the
   * device (the usual case: it fails only for gradients beyond ~1e20 or
   * extreme lr/eps), and training pays no extra read-back.
   */
  private provablyFinite(gradNorm: number, gradScale: number): boolean {
    const { decay, stepSize } = this.hyper(gradScale);
    // 1% for the float32 rounding of the Σg² the norm came from
    const G = Math.max(this.gradBound, gradNorm * gradScale * 1.01);
    const eps = Math.fround(this.eps);
    // a subnormal eps may be flushed to 0 on a GPU, and 0/0 is NaN where a gradient is 0
    return eps >= FLT_MIN_NORMAL && Number.isFinite(G) && G * G < SAFE && G / eps < SAFE && stepSize * (G / eps) < SAFE
      && Number.isFinite(Math.fround(stepSize)) && Number.isFinite(Math.fround(decay));
  }

  /** new [p, m, v] of one parameter, not yet assigned */
  private next(p: tf.Variable, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, h: ReturnType<AdamW['hyper']>): tf.Tensor[] {
    // webgpu: one fused dispatch per parameter instead of ~13 ops (src/backend/webgpu/optim.ts)
    return adamwUpdate(p, g, m, v, { decay: h.decay, beta1: this.beta1, beta2: this.beta2, eps: this.eps, stepSize: h.stepSize, sqrtBc2: h.sqrtBc2, gscale: h.gscale });
  }

  private moments(name: string, p: tf.Variable): [tf.Variable, tf.Variable] {
    if (!this.m.has(name)) {
      // tidy frees the zeros; a variable holds its own reference to the data
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
    return [this.m.get(name)!, this.v.get(name)!];
  }

  /**
   * Apply one update; grads are keyed like params and multiplied by
   * gradScale first (the clipping coefficient). Does not dispose grads.
   * Unchecked: see update() for the form that refuses a non-finite result.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, gradScale = 1): void {
    this.applyNow(params, grads, gradScale);
    // nothing bounds these gradients, so update() can no longer prove its results finite without a read
    this.gradBound = Infinity;
  }

  private applyNow(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, gradScale: number): void {
    const h = this.hyper(gradScale);
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      const [m, v] = this.moments(name, p);
      const [p1, m1, v1] = this.next(p, g, m, v, h);
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
      tf.dispose([p1, m1, v1]);
    }
    this.step = h.t;
  }

  /**
   * apply(), but only if every new parameter and moment is finite; else
   * nothing changes (not even the step count) and the first parameter whose
   * update is not finite is returned. `gradNorm` is the global norm of
   * `grads` before scaling; when it proves the update finite (above) no
   * device read is made.
   */
  async update(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, gradScale: number, gradNorm: number): Promise<string | undefined> {
    const G = gradNorm * gradScale;
    if (this.provablyFinite(gradNorm, gradScale)) {
      this.applyNow(params, grads, gradScale);
      this.gradBound = Math.max(this.gradBound, G * 1.01);
      return undefined;
    }
    const h = this.hyper(gradScale);
    const pending: Array<{ name: string; p: tf.Variable; m: tf.Variable; v: tf.Variable; next: tf.Tensor[] }> = [];
    const created: string[] = [];
    let flags: tf.Tensor | undefined;
    try {
      for (const [name, p] of params) {
        const g = grads.get(name);
        if (!g) continue;
        if (!this.m.has(name)) created.push(name);
        const [m, v] = this.moments(name, p);
        pending.push({ name, p, m, v, next: this.next(p, g, m, v, h) });
      }
      flags = tf.tidy(() => tf.stack(pending.map(({ next: [p1, , v1] }) => tf.logicalAnd(tf.all(tf.isFinite(p1)), tf.all(tf.isFinite(v1))))));
      const ok = await flags.data();
      const bad = pending.findIndex((_, i) => !ok[i]);
      if (bad >= 0) {
        for (const n of created) { this.m.get(n)!.dispose(); this.v.get(n)!.dispose(); this.m.delete(n); this.v.delete(n); }
        return pending[bad].name;
      }
      for (const { p, m, v, next: [p1, m1, v1] } of pending) { m.assign(m1); v.assign(v1); p.assign(p1); }
      this.step = h.t;
      this.gradBound = Math.max(this.gradBound, G * 1.01);
      return undefined;
    } finally {
      flags?.dispose();
      for (const { next } of pending) tf.dispose(next);
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
