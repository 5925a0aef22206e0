/**
 * AdamW with torch.optim.AdamW's exact update order:
 *   p  <- p·(1 - lr·wd)                      (decoupled weight decay first)
 *   m  <- β1·m + (1-β1)·g;  v <- β2·v + (1-β2)·g²
 *   p  <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
 * The learning rate is an argument of each update (a schedule is the
 * caller's); the optimizer holds β, eps, the weight decay, the step count
 * and the moments. Its settings and their checks live here; the Trainer's
 * options (options.ts) use them for its lr/betas/eps/weightDecay.
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamwApply, adamwUpdates, type AdamWHyper } from '../backend/ops.js';
import { checkOptions, describeValue, optionKeys, OptionsError } from '../util/options.js';
import { checkAgainst, fromHost, toHost, type HostTensor } from './host.js';

export interface AdamWOptions {
  /** peak learning rate (≥ 0); default 1e-3. The Trainer's base value; AdamW itself takes the lr of each update as update()'s argument */
  lr?: number;
  /** (β1, β2), each in [0, 1); default [0.9, 0.999] */
  betas?: [number, number];
  /** added to √v (> 0); default 1e-8 */
  eps?: number;
  /** decoupled weight decay (≥ 0, lr·weightDecay < 1); default 0.01 */
  weightDecay?: number;
}

/** what `new AdamW(…)` takes: the settings that stay fixed over a run */
export type AdamWSettings = Omit<AdamWOptions, 'lr'>;

export interface ResolvedAdamW {
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
}

/** one update's arguments */
export interface UpdateOptions {
  /** the learning rate of this update (≥ 0, lr·weightDecay < 1) */
  lr: number;
  /** multiplies every gradient first (the clipping coefficient); default 1 */
  gradScale?: number;
  /** global L2 norm of the gradients before scaling; when it proves the update finite, update() reads nothing back from the device */
  gradNorm?: number;
}

/** the optimizer's part of a run's state: step and moments, as host copies */
export interface AdamWState { step: number; m: Map<string, HostTensor>; v: Map<string, HostTensor> }

export const ADAMW_KEYS = optionKeys<AdamWOptions>()(['lr', 'betas', 'eps', 'weightDecay']);
const SETTINGS_KEYS = optionKeys<AdamWSettings>()(['betas', 'eps', 'weightDecay']);
const UPDATE_KEYS = optionKeys<UpdateOptions>()(['lr', 'gradScale', 'gradNorm']);

/**
 * AdamW's settings in `o` checked (other keys of `o` are ignored), each
 * error from `where` naming `prefix + key`; unset ones stay undefined.
 */
export function adamwPart(where: string, o: Record<string, unknown>, prefix = ''): AdamWOptions {
  const fail = (k: string, what: string): never => { throw new OptionsError(where, prefix + k, `must be ${what}, got ${describeValue(o[k])}`); };
  const number = (k: string, ok: (x: number) => boolean, what: string): number | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    return typeof v === 'number' && Number.isFinite(v) && ok(v) ? v : fail(k, what);
  };
  const betas = o.betas === undefined ? undefined
    : Array.isArray(o.betas) && o.betas.length === 2 && o.betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)
      ? [o.betas[0], o.betas[1]] as [number, number]
      : fail('betas', 'two numbers in [0, 1) (β = 1 divides by 1 − β^t = 0)');
  return {
    lr: number('lr', (x) => x >= 0, 'a finite number ≥ 0'),
    betas,
    eps: number('eps', (x) => x > 0, 'a finite number > 0 (with 0, a parameter whose gradient is 0 becomes 0/0 = NaN)'),
    weightDecay: number('weightDecay', (x) => x >= 0, 'a finite number ≥ 0'),
  };
}

/** torch.optim.AdamW's defaults */
const DEFAULTS = { lr: 1e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 0.01 };

/** checked settings defaulted; lr·weightDecay is checked here, once both are known */
export function finishAdamW(where: string, a: AdamWOptions): ResolvedAdamW {
  const out = { lr: a.lr ?? DEFAULTS.lr, betas: Object.freeze([...(a.betas ?? DEFAULTS.betas)]) as unknown as readonly [number, number], eps: a.eps ?? DEFAULTS.eps, weightDecay: a.weightDecay ?? DEFAULTS.weightDecay };
  checkDecay(where, out.lr, out.weightDecay);
  return out;
}

// p ← p·(1 − lr·wd) first: at lr·wd ≥ 1 every step zeroes or flips the sign of every weight
function checkDecay(where: string, lr: number, weightDecay: number): void {
  if (lr * weightDecay >= 1) throw new OptionsError(where, 'weightDecay', `times lr must be below 1 (lr ${lr} × weightDecay ${weightDecay} = ${lr * weightDecay} zeroes or flips every weight each step)`);
}

/** float32 stays finite with room to spare below this (its largest value is 3.4e38) */
const SAFE = 1e30;
const FLT_MIN_NORMAL = 1.1754943508222875e-38;

export class AdamW {
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

  constructor(opts: AdamWSettings = {}) {
    if (opts !== null && typeof opts === 'object' && 'lr' in opts) {
      throw new OptionsError('AdamW', 'lr', 'is an argument of each update, not of the optimizer: opt.update(params, grads, { lr }) (a schedule changes it every step)');
    }
    checkOptions('AdamW', opts, SETTINGS_KEYS);
    const o = adamwPart('AdamW', opts as Record<string, unknown>);
    [this.beta1, this.beta2] = o.betas ?? DEFAULTS.betas;
    this.eps = o.eps ?? DEFAULTS.eps;
    this.weightDecay = o.weightDecay ?? DEFAULTS.weightDecay;
  }

  /** removed: the learning rate is update()'s argument; reading or setting it here is an error, where a plain field would be silently ignored */
  get lr(): never { throw this.noLr(); }
  set lr(_: number) { throw this.noLr(); }
  private noLr(): OptionsError {
    return new OptionsError('AdamW', 'lr', 'is no longer a property of the optimizer: pass it to each update, opt.update(params, grads, { lr })');
  }

  /** one update's arguments checked and defaulted */
  private args(where: string, o: UpdateOptions): { lr: number; gradScale: number; gradNorm: number } {
    checkOptions(where, o, UPDATE_KEYS);
    if (o === undefined) throw new OptionsError(where, 'lr', 'is missing: update(params, grads, { lr })');
    const fail = (k: string, what: string): never => { throw new OptionsError(where, k, `must be ${what}, got ${describeValue((o as unknown as Record<string, unknown>)[k])}`); };
    const { lr, gradScale = 1, gradNorm = NaN } = o;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) fail('lr', 'a finite number ≥ 0');
    checkDecay(where, lr, this.weightDecay);
    if (typeof gradScale !== 'number') fail('gradScale', 'a number');
    if (typeof gradNorm !== 'number') fail('gradNorm', 'a number');
    return { lr, gradScale, gradNorm };
  }

  private hyper(lr: number, gradScale: number) {
    const t = this.step + 1;
    const bc1 = 1 - this.beta1 ** t;
    return { t, decay: 1 - lr * this.weightDecay, stepSize: lr / bc1, sqrtBc2: Math.sqrt(1 - this.beta2 ** t), gscale: gradScale };
  }

  /**
   * Whether the next update is certainly finite, from host numbers alone:
   * with every |g| ≤ G, |m| ≤ G and v ≤ G², so |Δp| ≤ stepSize·G/eps. When
   * that is far below float32's range the update needs no check on the
   * device (the usual case: it fails only for gradients beyond ~1e20 or
   * extreme lr/eps), and training pays no extra read-back.
   */
  private provablyFinite(lr: number, gradNorm: number, gradScale: number): boolean {
    const { decay, stepSize } = this.hyper(lr, gradScale);
    // 1% for the float32 rounding of the Σg² the norm came from
    const G = Math.max(this.gradBound, gradNorm * gradScale * 1.01);
    const eps = Math.fround(this.eps);
    // a subnormal eps may be flushed to 0 on a GPU, and 0/0 is NaN where a gradient is 0
    return eps >= FLT_MIN_NORMAL && Number.isFinite(G) && G * G < SAFE && G / eps < SAFE && stepSize * (G / eps) < SAFE
      && Number.isFinite(Math.fround(stepSize)) && Number.isFinite(Math.fround(decay));
  }

  /**
   * new [p, m, v] of every parameter that has a gradient, handed to `each` unassigned
   * (webgpu: one fused dispatch per parameter instead of ~13 ops, or one op for many: src/backend/webgpu/optim.ts);
   * `inPlace`: the backend may write p, m and v directly (ops.adamwApply), and hands `each` only the others
   */
  private next(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, h: ReturnType<AdamW['hyper']>,
    each: (it: { name: string; p: tf.Variable; m: tf.Variable; v: tf.Variable }, next: tf.Tensor[]) => void, created?: string[], ctrl?: tf.Tensor, inPlace = false): void {
    const items: Array<{ name: string; p: tf.Variable; g: tf.Tensor; m: tf.Variable; v: tf.Variable }> = [];
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      if (created && !this.m.has(name)) created.push(name);
      const [m, v] = this.moments(name, p);
      items.push({ name, p, g, m, v });
    }
    const hyper: AdamWHyper = { decay: h.decay, beta1: this.beta1, beta2: this.beta2, eps: this.eps, stepSize: h.stepSize, sqrtBc2: h.sqrtBc2, gscale: h.gscale, ...(ctrl ? { ctrl } : {}) };
    (inPlace ? adamwApply : adamwUpdates)(items, hyper, (i, next) => each(items[i], next));
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
   * Apply one update with learning rate `lr`; grads are keyed like params
   * and multiplied by gradScale first (the clipping coefficient). Does not
   * dispose grads. Unchecked: see update() for the form that refuses a
   * non-finite result.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, opts: Omit<UpdateOptions, 'gradNorm'>): void {
    const { lr, gradScale } = this.args('AdamW.apply', opts);
    this.applyNow(params, grads, lr, gradScale);
    // nothing bounds these gradients, so update() can no longer prove its results finite without a read
    this.gradBound = Infinity;
  }

  private applyNow(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, gradScale: number, ctrl?: tf.Tensor): void {
    const h = this.hyper(lr, gradScale);
    this.next(params, grads, h, ({ p, m, v }, [p1, m1, v1]) => {
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
      tf.dispose([p1, m1, v1]);
    }, undefined, ctrl, true);
    this.step = h.t;
  }

  /**
   * apply(), but only if every new parameter and moment is finite; else
   * nothing changes (not even the step count) and the first parameter whose
   * update is not finite is returned. `gradNorm` is the global norm of
   * `grads` before scaling; when it proves the update finite (above) no
   * device read is made.
   * @example await opt.update(params, grads, { lr: 1e-3, gradScale: 1, gradNorm })
   */
  async update(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, opts: UpdateOptions): Promise<string | undefined> {
    const { lr, gradScale, gradNorm } = this.args('AdamW.update', opts);
    const G = gradNorm * gradScale;
    if (this.provablyFinite(lr, gradNorm, gradScale)) {
      this.applyNow(params, grads, lr, gradScale);
      this.gradBound = Math.max(this.gradBound, G * 1.01);
      return undefined;
    }
    const h = this.hyper(lr, gradScale);
    const pending: Array<{ name: string; p: tf.Variable; m: tf.Variable; v: tf.Variable; next: tf.Tensor[] }> = [];
    const created: string[] = [];
    let flags: tf.Tensor | undefined;
    try {
      this.next(params, grads, h, (it, next) => pending.push({ ...it, next }), created);
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

  /**
   * @internal A pipelined step's update (the trainer, SHARELORA_WEBGPU_PIPELINE):
   * the clipping coefficient and whether to apply at all come from `ctrl` on
   * the device (ops.stepControl), so nothing is read first. The step count
   * advances now; where the host later finds that the device kept p, m and v
   * (ctrl said 0), undo(token) puts the count and the bound back. Done only
   * where the update is provably finite for any gradient whose scaled norm is
   * at most `bound` (the clipping threshold): null, and nothing done, otherwise.
   */
  applyControlled(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, ctrl: tf.Tensor, bound: number): { step: number; gradBound: number } | null {
    this.args('AdamW.applyControlled', { lr });
    if (!(bound > 0) || !this.provablyFinite(lr, bound, 1)) return null;
    const before = { step: this.step, gradBound: this.gradBound };
    this.applyNow(params, grads, lr, 1, ctrl);
    this.gradBound = Math.max(this.gradBound, bound * 1.01);
    return before;
  }

  /** @internal the device kept p, m and v for the update applyControlled() returned `token` for */
  undo(token: { step: number; gradBound: number }): void {
    this.step = token.step;
    this.gradBound = token.gradBound;
  }

  /** step and moments as host copies (what a checkpoint saves) */
  async state(): Promise<AdamWState> {
    return { step: this.step, m: await toHost(this.m), v: await toHost(this.v) };
  }

  /**
   * Go on from `s` (state() of this or another AdamW over the same
   * parameters, or a checkpoint's): step and moments are replaced, every
   * tensor checked against `params` first, so a mismatch changes nothing.
   * `where` and `prefix` name the caller and the state's part in errors.
   */
  loadState(s: AdamWState, params: Map<string, tf.Variable>, { where = 'AdamW.loadState', prefix = '' }: { where?: string; prefix?: string } = {}): void {
    checkAgainst(where, `${prefix}m`, s.m, params);
    checkAgainst(where, `${prefix}v`, s.v, params);
    this.dispose();
    // tidy frees the initial value; the variable keeps its own reference to the data
    for (const [n, t] of s.m) this.m.set(n, tf.tidy(() => tf.variable(fromHost(t), false)));
    for (const [n, t] of s.v) this.v.set(n, tf.tidy(() => tf.variable(fromHost(t), false)));
    this.step = s.step;
    // |m| and √v bound every gradient applied so far: the update's finiteness proof starts from them
    let bound = 0;
    for (const [which, ts] of [['m', s.m], ['v', s.v]] as const) {
      for (const { data: d } of ts.values()) {
        for (let i = 0; i < d.length; i++) {
          const a = which === 'm' ? Math.abs(d[i]) : Math.sqrt(Math.abs(d[i]));
          if (!(a <= bound)) bound = a;
        }
      }
    }
    this.gradBound = bound * 1.01;
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
