/**
 * ShareLoRA: LoRA whose A (or B, or both) is one tensor per target role,
 * tied across layers.
 *
 *            layer 0        layer 1        layer L-1
 *   ShareA:  B_0·A  x       B_1·A  x  ...  B_{L-1}·A  x     (A: r×d_in, one per role)
 *   ShareB:  B·A_0  x       B·A_1  x  ...  B·A_{L-1}  x     (B: d_out×r, one per role)
 *   ShareAB: B·A    x       B·A    x  ...  B·A        x
 *
 * Every layer's projection holds a hook pointing at the same tf.Variable,
 * so autodiff sums the layers' gradients into the shared tensor and the
 * optimizer sees it once.
 *
 * shareGroups narrows the tie from all layers to groups of layers: one
 * shared tensor per (role, group). k = 1 gives every layer its own (LoRA),
 * one group of all layers is the paper's ShareLoRA.
 *
 * The neighbours a comparison needs are the same hook with other factors:
 *   LoRA-FA:   A frozen (a non-trainable variable, still saved), any share;
 *   Tied-LoRA: ShareAB plus per-layer vectors, ΔW = s·diag(v)·B·diag(u)·A;
 *   VeRA:      one frozen A and B for every target, sliced to each layer's
 *              widths, with per-layer vectors d and b: ΔW = diag(b)·B·diag(d)·A.
 * Linear asks the hook for its two factors, so the vectors become ordinary
 * low-rank factors and every backend's fused LoRA kernel runs them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Linear, LoraHook } from '../models/linear.js';
import type { Model } from '../models/types.js';
import { checkOptions } from '../util/options.js';
import { Rng, uniqueVariableName } from '../util/rng.js';
import { AdapterConfig, AdapterConfigError, MAX_VERA_PROJECTION, resolveGroups, type ShareLoraOptions } from './config.js';
import type { AdaptedModule, InjectedAdapter } from './adapter.js';
import { AdapterUnloadedError } from './errors.js';
import { PEFT_PREFIX, TIED_U, TIED_V, VERA_A, VERA_B } from './names.js';
import { saveAdapter } from './save.js';
import { findTargets, type Target } from './targets.js';
import { veraProjection } from './vera.js';

export { AdapterUnloadedError } from './errors.js';

export type { AdaptedModule } from './adapter.js';

class Hook implements LoraHook {
  merged = false;
  enabled = true;
  constructor(
    /** the stored A [r, ≥ d_in] and B [≥ d_out, r], trainable or frozen, tied or not; VeRA's are as wide as the widest target and sliced */
    readonly A: tf.Variable, readonly B: tf.Variable,
    readonly scaling: number, readonly dropout: number, private readonly adapter: ShareLoraAdapter,
    private readonly dIn: number, private readonly dOut: number,
    /** per-layer vectors: u [r] scales A's rows (VeRA's d), v [d_out] scales B's rows (VeRA's b) */
    readonly u?: tf.Variable, readonly v?: tf.Variable,
  ) {}

  factors(): [tf.Tensor2D, tf.Tensor2D] {
    let A = this.A as tf.Tensor as tf.Tensor2D, B = this.B as tf.Tensor as tf.Tensor2D;
    if (A.shape[1] !== this.dIn) A = tf.slice(A, [0, 0], [A.shape[0], this.dIn]);
    if (B.shape[0] !== this.dOut) B = tf.slice(B, [0, 0], [this.dOut, B.shape[1]]);
    // diag(u)·A and diag(v)·B: the same ΔW as PEFT's λ_b ⊙ (B (λ_d ⊙ (A x))), and one fused low-rank GEMM pair still does the work
    if (this.u) A = tf.mul(tf.reshape(this.u, [-1, 1]), A);
    if (this.v) B = tf.mul(tf.reshape(this.v, [-1, 1]), B);
    return [A, B];
  }

  nextSeed(): number { return this.adapter.nextDropoutSeed(); }

  release(): void { if (!this.adapter.isUnloaded) this.adapter.unload(); }
}

interface SavedModule { path: string; linears: Map<string, Linear>; original: Map<string, { weight: tf.Tensor2D; bias?: tf.Tensor1D }> }

export class ShareLoraAdapter implements InjectedAdapter {
  readonly options: AdapterConfig;
  readonly modules: AdaptedModule[] = [];
  readonly scaling: number;
  /** the layers each shared tensor spans (sorted; all layers in one group unless the shareGroups option says otherwise) */
  private readonly tiedGroups: number[][];
  /** PEFT parameter name (as named_parameters() gives it) -> variable; a tied tensor once, under its first layer's name */
  private readonly params = new Map<string, tf.Variable>();
  /** the adapter's frozen tensors (LoRA-FA's A, VeRA's projections, Tied-LoRA's frozen factors), named as the trainable ones */
  private readonly frozen = new Map<string, tf.Variable>();
  private readonly saved: SavedModule[] = [];
  private readonly unmergedWeights = new Map<Linear, tf.Tensor2D>();
  /** counts dropout masks drawn, so a resumed run draws the same ones */
  dropoutCounter = 0;
  private unloaded = false;

  /**
   * `where`: the function named by an unknown-option error. `fromFile`:
   * loading a folder, whose tensors already bound r (PEFT accepts an r
   * above a layer's widths, so we load one).
   */
  constructor(readonly model: Model, opts: ShareLoraOptions = {}, internal: { fromFile?: boolean; where?: string } = {}) {
    this.options = AdapterConfig.resolve(opts, { where: internal.where });
    const { r, seed, init, method, train } = this.options;
    this.scaling = this.options.scaling;
    const rng = new Rng(seed);
    this.tiedGroups = resolveGroups(this.options.shareGroups, model.numLayers);
    const groupOf = new Map<number, number>();
    this.tiedGroups.forEach((g, i) => g.forEach((l) => groupOf.set(l, i)));
    const targets = findTargets(model, this.options.targets);
    for (const t of targets) if (t.linear.lora) throw new AdapterConfigError('targets', `${t.path} already has an adapter; call adapter.unload() on the old one first`);
    if (!internal.fromFile || method === 'vera') checkRank(targets, r, method);
    const variable = (vals: Float32Array, shape: number[], name: string, trainable: boolean) => {
      const v = tf.tidy(() => tf.variable(tf.tensor(vals, shape), trainable, uniqueVariableName(name))); // tidy frees the initial tensor
      (trainable ? this.params : this.frozen).set(name, v);
      return v;
    };
    let projection: { A: tf.Variable; B: tf.Variable } | undefined;
    if (method === 'vera') {
      // one frozen pair for every target, as wide as the widest (PEFT's _find_dim), drawn by torch's generator from projectionSeed
      const dIn = Math.max(...targets.map((t) => t.linear.inFeatures)), dOut = Math.max(...targets.map((t) => t.linear.outFeatures));
      const p = veraProjection(this.options.projectionSeed, r, dIn, dOut);
      projection = { A: variable(p.A, [r, dIn], VERA_A, false), B: variable(p.B, [dOut, r], VERA_B, false) };
    }
    // Tied-LoRA starts as the base model by zeroing one trainable factor: B where B trains (as LoRA), else v, A, u
    const zero = init === 'random' || method !== 'tied-lora' ? undefined : (['B', 'v', 'A', 'u'] as const).find((f) => train.has(f));
    // targets are sorted by layer within a role, so a group's tensor is named after its first layer, as PEFT names a tied parameter
    const first = new Map<string, { A: tf.Variable; B: tf.Variable }>();
    for (const t of targets) {
      const { inFeatures: din, outFeatures: dout } = t.linear;
      const base = `${PEFT_PREFIX}${t.path}`;
      let hook: Hook;
      if (projection) {
        const d = init === 'random' ? rng.normal(r, 1) : new Float32Array(r).fill(this.options.dInitial);
        const b = init === 'random' ? new Float32Array(dout).fill(1) : new Float32Array(dout);
        // PEFT's order in named_parameters(): lambda_b, then lambda_d
        const bv = variable(b, [dout], `${base}.vera_lambda_b.default`, true);
        const dv = variable(d, [r], `${base}.vera_lambda_d.default`, true);
        hook = new Hook(projection.A, projection.B, this.scaling, this.options.dropout, this, din, dout, dv, bv);
      } else {
        const tie = `${t.role}#${groupOf.get(t.layer)}`;
        const f = first.get(tie);
        let A: tf.Variable, B: tf.Variable;
        if (f && this.options.sharesA()) A = f.A;
        else {
          // Kaiming-uniform with a = sqrt(5) over fan_in = d_in: U(±1/sqrt(d_in)), as nn.Linear/loralib/PEFT
          const vals = zero === 'A' ? new Float32Array(r * din) : init === 'gaussian' ? rng.normal(r * din, 1 / r) : rng.uniform(r * din, -1 / Math.sqrt(din), 1 / Math.sqrt(din));
          A = variable(vals, [r, din], `${base}.lora_A.default.weight`, train.has('A'));
        }
        if (f && this.options.sharesB()) B = f.B;
        else {
          // a frozen B must be random, or the update stays zero for ever
          const random = init === 'random' || (method === 'tied-lora' && zero !== 'B');
          const vals = random ? rng.uniform(dout * r, -1 / Math.sqrt(r), 1 / Math.sqrt(r)) : new Float32Array(dout * r);
          B = variable(vals, [dout, r], `${base}.lora_B.default.weight`, train.has('B'));
        }
        if (!f) first.set(tie, { A, B });
        // a frozen vector would stay all ones (a no-op), so only trained ones exist
        const u = method === 'tied-lora' && train.has('u') ? variable(new Float32Array(r).fill(zero === 'u' ? 0 : 1), [r], `${base}.${TIED_U}.default`, true) : undefined;
        const v = method === 'tied-lora' && train.has('v') ? variable(new Float32Array(dout).fill(zero === 'v' ? 0 : 1), [dout], `${base}.${TIED_V}.default`, true) : undefined;
        hook = new Hook(A, B, this.scaling, this.options.dropout, this, din, dout, u, v);
      }
      t.linear.lora = hook;
      this.modules.push({ ...t, hook });
    }
    const toSave = this.options.modulesToSave ?? [...model.heads.keys()];
    try {
      for (const path of toSave) this.trainModule(path);
    } catch (e) {
      // an unknown module must not leave hooks (and their variables) attached to the model
      this.unload();
      throw e;
    }
  }

  /** PEFT's modules_to_save: a trainable copy of a head, restored by unload(). */
  private trainModule(path: string): void {
    const linears = this.model.heads.get(path);
    if (!linears) throw new AdapterConfigError('modulesToSave', `"${path}" is not a module this ${this.model.family} model can train in full (available: ${[...this.model.heads.keys()].join(', ') || 'none'})`);
    const original = new Map<string, { weight: tf.Tensor2D; bias?: tf.Tensor1D }>();
    for (const [name, lin] of linears) {
      original.set(name, { weight: lin.weight, bias: lin.bias });
      const base = `${PEFT_PREFIX}${path}.modules_to_save.default${name ? `.${name}` : ''}`;
      const w = tf.variable(lin.weight, true, uniqueVariableName(`${base}.weight`)) as unknown as tf.Tensor2D;
      this.params.set(`${base}.weight`, w as unknown as tf.Variable);
      lin.weight = w;
      if (lin.bias) {
        const b = tf.variable(lin.bias, true, uniqueVariableName(`${base}.bias`)) as unknown as tf.Tensor1D;
        this.params.set(`${base}.bias`, b as unknown as tf.Variable);
        lin.bias = b;
      }
    }
    this.saved.push({ path, linears, original });
  }

  get share() { return this.options.share; }
  get method() { return this.options.method; }
  /** the layer groups the shared matrix is tied within (copies; one group of all layers by default) */
  get shareGroups(): number[][] { return this.tiedGroups.map((g) => [...g]); }
  /** @deprecated the same as shareGroups (one name for one thing); kept for one release */
  get groups(): number[][] { return this.shareGroups; }
  /** true once unload() or mergeAndUnload() has removed the adapter */
  get isUnloaded(): boolean { return this.unloaded; }
  get savedModules(): string[] { return this.saved.map((s) => s.path); }

  nextDropoutSeed(): number {
    return (this.options.seed * 1_000_003 + ++this.dropoutCounter) % 2147483647;
  }

  /** name (PEFT's named_parameters(), e.g. `...q_proj.lora_A.default.weight`) -> trainable variable */
  namedParameters(): Map<string, tf.Variable> {
    return new Map(this.params);
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** the adapter's frozen tensors by name (LoRA-FA's A, VeRA's vera_A / vera_B, Tied-LoRA's frozen factors); saved, never trained */
  frozenParameters(): Map<string, tf.Variable> {
    return new Map(this.frozen);
  }

  /** elements in the adapter's frozen tensors, each counted once */
  frozenParameterCount(): number {
    let n = 0;
    for (const v of this.frozen.values()) n += v.size;
    return n;
  }

  /** Each tensor counted once, however many layers share it (like PEFT's de-duplication by id). */
  trainableParameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Adapter rows: one per adapted projection, for tables. */
  summary(): Array<{ module: string; role: string; layer: number; dIn: number; dOut: number; A: string; B: string }> {
    return this.modules.map((m) => ({
      module: m.path, role: m.role, layer: m.layer, dIn: m.linear.inFeatures, dOut: m.linear.outFeatures,
      A: this.nameOf(m.hook.A), B: this.nameOf(m.hook.B),
    }));
  }

  private nameOf(v: tf.Variable): string {
    for (const [k, p] of [...this.params, ...this.frozen]) if (p === v) return k;
    return '?';
  }

  /**
   * W += s·B·A (transposed for Conv1D's [in, out]); a shared A merges with
   * each layer's own B. The unmerged W is kept, so unmerge() is exact rather
   * than W + Δ - Δ; mergeAndUnload() drops it.
   */
  merge(): void {
    if (this.unloaded) throw new AdapterUnloadedError('merge');
    for (const m of this.modules) {
      if (m.hook.merged) continue;
      const W = m.linear.weight;
      m.linear.weight = tf.tidy(() => tf.add(W, this.delta(m))) as tf.Tensor2D;
      this.unmergedWeights.set(m.linear, W);
      m.hook.merged = true;
    }
  }

  private delta(m: AdaptedModule): tf.Tensor2D {
    const [A, B] = m.hook.factors();
    const BA = m.linear.layout === 'in_out' ? tf.matMul(A, B, true, true) : tf.matMul(B, A);
    return tf.mul(BA, this.scaling) as tf.Tensor2D;
  }

  unmerge(): void {
    for (const m of this.modules) {
      if (!m.hook.merged) continue;
      m.linear.weight.dispose();
      m.linear.weight = this.unmergedWeights.get(m.linear)!;
      this.unmergedWeights.delete(m.linear);
      m.hook.merged = false;
    }
  }

  /** Fold the adapter (and trained heads) into the model for good and detach it. */
  mergeAndUnload(): void {
    this.merge();
    for (const W of this.unmergedWeights.values()) W.dispose();
    this.unmergedWeights.clear();
    for (const m of this.modules) m.linear.lora = undefined;
    for (const s of this.saved) {
      for (const [name, lin] of s.linears) {
        const o = s.original.get(name)!;
        lin.weight = tf.clone(lin.weight);
        lin.bias = lin.bias && tf.clone(lin.bias);
        o.weight.dispose();
        o.bias?.dispose();
      }
    }
    this.release();
  }

  get merged(): boolean {
    return this.modules.every((m) => m.hook.merged);
  }

  /** Run the base model alone (adapters bypassed, heads still the trained copies). */
  setEnabled(on: boolean): void {
    for (const m of this.modules) m.hook.enabled = on;
  }

  /** The adapter's own tensors freed and its lists emptied, once the model holds none of them (unload, mergeAndUnload). */
  private release(): void {
    tf.dispose([...this.params.values(), ...this.frozen.values()]);
    this.params.clear();
    this.frozen.clear();
    this.modules.length = 0;
    this.saved.length = 0;
    this.unloaded = true;
  }

  /** Remove the adapter from the model, restoring the base weights and heads. */
  unload(): void {
    this.unmerge();
    for (const m of this.modules) m.linear.lora = undefined;
    for (const s of this.saved) {
      for (const [name, lin] of s.linears) {
        const o = s.original.get(name)!;
        lin.weight = o.weight;
        lin.bias = o.bias;
      }
    }
    this.release();
  }

  /** Save as a PEFT folder (adapter_config.json + adapter_model.safetensors); see save.ts. */
  async save(dir: string, extra: { baseModel?: string } = {}): Promise<void> {
    checkOptions('adapter.save', extra, ['baseModel']);
    // an unloaded adapter would replace the folder with one that adapts nothing
    if (this.unloaded) throw new AdapterUnloadedError(`save to ${dir}`);
    await saveAdapter(this, dir, extra);
  }
}

/**
 * An r no projection can use is refused before anything is allocated: a
 * rank-r update of a [d_out, d_in] matrix has rank at most min(d_in, d_out),
 * and r = 1e9 would otherwise end in a RangeError from the allocator. VeRA's
 * r may exceed the widths (its d vector is what trains), so it is bounded by
 * the size of the frozen projection instead.
 */
function checkRank(targets: Target[], r: number, method: string): void {
  if (method === 'vera') {
    const dIn = Math.max(...targets.map((t) => t.linear.inFeatures)), dOut = Math.max(...targets.map((t) => t.linear.outFeatures));
    if (r * (dIn + dOut) > MAX_VERA_PROJECTION) throw new AdapterConfigError('r', `${r} would make VeRA's frozen projections r·(d_in + d_out) = ${r} × ${dIn + dOut} elements; at most ${MAX_VERA_PROJECTION} (512 MiB of float32) are accepted, so r ≤ ${Math.floor(MAX_VERA_PROJECTION / (dIn + dOut))} here`);
    return;
  }
  for (const t of targets) {
    const m = Math.min(t.linear.inFeatures, t.linear.outFeatures);
    if (r > m) throw new AdapterConfigError('r', `${r} is more than ${t.path} can use: a rank-r update of its [${t.linear.outFeatures}, ${t.linear.inFeatures}] weight has rank at most min(d_in, d_out) = ${m}; pass r ≤ ${Math.min(...targets.map((x) => Math.min(x.linear.inFeatures, x.linear.outFeatures)))} for these targets`);
  }
}

/**
 * Add ShareLoRA adapters to a model; the base stays frozen.
 * @example const adapter = injectShareLoRA(model, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'A' });
 */
export function injectShareLoRA(model: Model, options: ShareLoraOptions = {}): ShareLoraAdapter {
  return new ShareLoraAdapter(model, options, { where: 'injectShareLoRA' });
}

/** injectShareLoRA for loadAdapter: the folder's tensors, already read and shape-checked, bound the rank. */
export function injectForLoad(model: Model, options: ShareLoraOptions): ShareLoraAdapter {
  return new ShareLoraAdapter(model, options, { fromFile: true, where: 'loadAdapter' });
}
