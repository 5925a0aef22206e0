/** ShareLoRA options, their defaults, and the check that fills them in. */

export type Share = 'none' | 'A' | 'B' | 'AB';
export const SHARES: readonly Share[] = ['none', 'A', 'B', 'AB'];

/**
 * The low-rank family one injection path builds:
 *   'lora'      ΔW = s·B·A, A and B trained (ShareLoRA through `share`);
 *   'lora-fa'   the same with A frozen at its random initialisation (LoRA-FA; with share 'A' a frozen shared A);
 *   'vera'      ΔW = Λ_b·B·Λ_d·A, A and B frozen random and shared by every adapted projection, d (r) and b (d_out) trained per projection (Kopiczko et al. 2023, PEFT's VeRA);
 *   'tied-lora' ΔW = s·Λ_v·B·Λ_u·A, A and B tied across layers, u (r) and v (d_out) per layer, `tiedTrain` says which train (Renduchintala et al. 2023).
 */
export type Method = 'lora' | 'lora-fa' | 'vera' | 'tied-lora';
export const METHODS: readonly Method[] = ['lora', 'lora-fa', 'vera', 'tied-lora'];
/** Tied-LoRA's factors in the paper's notation, outermost first: v B u A (a capital trains, a lower-case letter is frozen) */
export type TiedFactor = 'v' | 'B' | 'u' | 'A';

export interface ShareLoraOptions {
  /** rank of every adapted projection. Default 8. */
  r?: number;
  /** scaling numerator: ΔW = (alpha / r)·B·A. Default 2·r (PEFT's default is 8). */
  alpha?: number;
  /**
   * modules to adapt: short names `q k v o gate up down`, or HF module names
   * (`q_proj`, `query`, `c_attn`, `attention.output.dense`, ...) matched as a
   * path suffix, or a RegExp over the full module path. Default: q and v.
   */
  targets?: Array<string> | RegExp;
  /** which matrix is tied across layers, separately for each target. Default 'A' (the paper's); with method 'lora-fa', 'none' (LoRA-FA as published). */
  share?: Share;
  /**
   * which layers tie the shared matrix: k = blocks of k consecutive layers
   * (the last may be shorter), or an explicit partition such as
   * [[0, 1, 2], [3, 4, 5]]. k = 1 is LoRA, k = numLayers (the default) the
   * paper's ShareLoRA; the knob runs between them.
   */
  shareGroups?: number | number[][];
  /** dropout on the adapter's input while training. Default 0. */
  dropout?: number;
  /** seed for A's initialisation and for dropout masks. Default 0. */
  seed?: number;
  /** extra modules trained in full and saved with the adapter (PEFT's modules_to_save). Default: the classifier of a classification model. */
  modulesToSave?: string[];
  /**
   * 'kaiming' (default): A Kaiming-uniform, B zeros, so the adapter starts as the identity.
   * 'gaussian': A ~ N(0, 1/r) (PEFT's "gaussian", used by ShareLoRA's peft fork), B zeros.
   * 'random': B also Kaiming-uniform (PEFT's init_lora_weights=false), for tests.
   */
  init?: 'kaiming' | 'gaussian' | 'random';
  /** scale by alpha/sqrt(r) (rsLoRA) instead of alpha/r. Default false. */
  useRslora?: boolean;
  /** 'lora' (default), 'lora-fa', 'vera' or 'tied-lora'; see Method. */
  method?: Method;
  /**
   * tied-lora only: which of v, B, u, A train, in the paper's notation (a
   * capital trains, lower case is frozen): 'VBUA' (default, all), 'vBuA'
   * (A and B, vectors fixed at 1: ShareAB), 'VbUa' (only the vectors, on
   * frozen random A and B: VeRA's idea with tied matrices), 'vbuA', 'vBua', ...
   * Initialisation: A Kaiming-uniform, B zeros where B trains, vectors ones;
   * where B is frozen it is random instead and the first trainable one of
   * v, A, u starts at zero, so that every pattern starts as the base model
   * and still has a gradient.
   */
  tiedTrain?: string;
  /** vera only: the initial value of every d (PEFT's d_initial). Default 0.1. */
  dInitial?: number;
  /** vera only: the seed of the frozen projections (PEFT's projection_prng_key, torch's generator). Default 0. */
  projectionSeed?: number;
}

export interface ResolvedOptions {
  r: number;
  alpha: number;
  targets: Array<string> | RegExp;
  share: Share;
  /** as given (checked for type here, against the model's layers by the adapter) */
  shareGroups: number | number[][] | undefined;
  dropout: number;
  seed: number;
  modulesToSave: string[] | undefined;
  init: 'kaiming' | 'gaussian' | 'random';
  useRslora: boolean;
  method: Method;
  /** the factors that train (lora: A B; lora-fa: B; vera: u (= d) and v (= b); tied-lora: as tiedTrain says) */
  train: ReadonlySet<TiedFactor>;
  /** tied-lora: tiedTrain as given, e.g. 'VBUA'; undefined otherwise */
  tiedTrain: string | undefined;
  dInitial: number;
  projectionSeed: number;
}

export class AdapterConfigError extends Error {
  constructor(public readonly field: string, message: string, public readonly file?: string) {
    super(`${file ? `${file}: ` : ''}${field}: ${message}`);
    this.name = 'AdapterConfigError';
  }
}

const KNOWN: ReadonlySet<string> = new Set(['r', 'alpha', 'targets', 'share', 'shareGroups', 'dropout', 'seed', 'modulesToSave', 'init', 'useRslora', 'method', 'tiedTrain', 'dInitial', 'projectionSeed']);
/** which options each method takes beyond the common ones (a VeRA option on LoRA is a mistake, not a no-op) */
const ONLY: Record<string, Method[]> = { tiedTrain: ['tied-lora'], dInitial: ['vera'], projectionSeed: ['vera'], share: ['lora', 'lora-fa'], alpha: ['lora', 'lora-fa', 'tied-lora'], useRslora: ['lora', 'lora-fa', 'tied-lora'], shareGroups: ['lora', 'lora-fa', 'tied-lora'] };
/**
 * VeRA's r may exceed the projections' widths (the paper uses r = 1024 on
 * 768-wide RoBERTa-base), so its bound is on the frozen projection instead:
 * r·(d_in + d_out) elements at most, 512 MiB of float32.
 */
export const MAX_VERA_PROJECTION = 2 ** 27;
const TIED = /^[vV][bB][uU][aA]$/;
/**
 * |alpha/r| above this is no adapter anyone trained: it only turns the first
 * forward into Inf (PEFT configs in the wild use 1/8 to 16 or so).
 */
export const MAX_SCALING = 1e4;

export function resolveOptions(o: ShareLoraOptions = {}, file?: string): ResolvedOptions {
  if (o === null || typeof o !== 'object') throw new AdapterConfigError('options', `must be an object, got ${JSON.stringify(o)}`, file);
  // a misspelt option (shareGroup, rank) would otherwise be silently ignored
  const unknown = Object.keys(o).filter((k) => !KNOWN.has(k));
  if (unknown.length) throw new AdapterConfigError(unknown[0], `is not an option (known: ${[...KNOWN].join(', ')})`, file);
  const method = o.method ?? 'lora';
  if (!METHODS.includes(method)) throw new AdapterConfigError('method', `must be one of ${METHODS.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(o.method)}`, file);
  for (const [k, ms] of Object.entries(ONLY)) {
    if ((o as Record<string, unknown>)[k] !== undefined && !ms.includes(method)) throw new AdapterConfigError(k, `does not apply to method '${method}' (only to ${ms.map((m) => `'${m}'`).join(', ')})${method === 'vera' && k === 'share' ? `: VeRA shares its frozen A and B across every adapted projection by construction` : method === 'vera' && (k === 'alpha' || k === 'useRslora') ? ': VeRA has no scaling, its vectors d and b carry the scale' : ''}`, file);
  }
  const r = o.r ?? (method === 'vera' ? 256 : 8);
  if (!Number.isSafeInteger(r) || r < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(o.r)}`, file);
  const alpha = o.alpha ?? 2 * r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new AdapterConfigError('alpha', `must be a finite number, got ${JSON.stringify(o.alpha)}`, file);
  const useRslora = o.useRslora ?? false;
  if (typeof useRslora !== 'boolean') throw new AdapterConfigError('useRslora', `must be true or false, got ${JSON.stringify(o.useRslora)}`, file);
  const scaling = useRslora ? alpha / Math.sqrt(r) : alpha / r;
  if (Math.abs(scaling) > MAX_SCALING) throw new AdapterConfigError('alpha', `${alpha} gives a scaling alpha/${useRslora ? 'sqrt(r)' : 'r'} of ${scaling}; at most ${MAX_SCALING} in magnitude is accepted (larger only overflows the first forward)`, file);
  let tiedTrain: string | undefined;
  let train: Set<TiedFactor>;
  if (method === 'tied-lora') {
    tiedTrain = o.tiedTrain ?? 'VBUA';
    if (typeof tiedTrain !== 'string' || !TIED.test(tiedTrain) || tiedTrain === 'vbua') throw new AdapterConfigError('tiedTrain', `must spell v, B, u, A in that order, a capital for each factor that trains and lower case for each frozen one, at least one capital (e.g. 'VBUA', 'vBuA', 'VbUa'), got ${JSON.stringify(o.tiedTrain)}`, file);
    const t = tiedTrain;
    train = new Set((['v', 'B', 'u', 'A'] as const).filter((f, i) => t[i] === t[i].toUpperCase()));
  } else {
    train = new Set<TiedFactor>(method === 'lora' ? ['A', 'B'] : method === 'lora-fa' ? ['B'] : ['u', 'v']);
  }
  const dInitial = o.dInitial ?? 0.1;
  if (typeof dInitial !== 'number' || !Number.isFinite(dInitial)) throw new AdapterConfigError('dInitial', `must be a finite number, got ${JSON.stringify(o.dInitial)}`, file);
  const projectionSeed = o.projectionSeed ?? 0;
  if (!Number.isSafeInteger(projectionSeed) || projectionSeed < 0) throw new AdapterConfigError('projectionSeed', `must be a non-negative integer (torch's manual_seed), got ${JSON.stringify(o.projectionSeed)}`, file);
  const share = method === 'vera' || method === 'tied-lora' ? 'AB' : o.share ?? (method === 'lora-fa' ? 'none' : 'A');
  if (!SHARES.includes(share)) throw new AdapterConfigError('share', `must be one of ${SHARES.map((s) => `'${s}'`).join(', ')}, got ${JSON.stringify(o.share)}`, file);
  const g = o.shareGroups;
  if (g !== undefined) {
    if (share === 'none') throw new AdapterConfigError('shareGroups', `ties nothing with share 'none'; pass share 'A', 'B' or 'AB'`, file);
    const isK = typeof g === 'number' && Number.isSafeInteger(g) && g >= 1;
    const isList = Array.isArray(g) && g.length > 0 && g.every((x) => Array.isArray(x) && x.length > 0 && x.every((l) => Number.isSafeInteger(l)));
    if (!isK && !isList) throw new AdapterConfigError('shareGroups', `must be a positive integer k (blocks of k consecutive layers) or a list of non-empty lists of layer indices, got ${JSON.stringify(g)}`, file);
  }
  const dropout = o.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new AdapterConfigError('dropout', `must be in [0, 1), got ${JSON.stringify(o.dropout)}`, file);
  const targets = o.targets ?? ['q', 'v'];
  if (!(targets instanceof RegExp) && (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || !t))) {
    throw new AdapterConfigError('targets', `must be a non-empty list of module names or a RegExp, got ${JSON.stringify(o.targets)}`, file);
  }
  const init = o.init ?? 'kaiming';
  if (!['kaiming', 'gaussian', 'random'].includes(init)) throw new AdapterConfigError('init', `must be 'kaiming', 'gaussian' or 'random', got ${JSON.stringify(o.init)}`, file);
  if (method === 'vera' && init === 'gaussian') throw new AdapterConfigError('init', `'gaussian' has no meaning for VeRA: 'kaiming' is PEFT's init_weights=true (d = dInitial, b = 0), 'random' its init_weights=false (b = 1, d ~ N(0, 1))`, file);
  return { r, alpha: method === 'vera' ? 1 : alpha, targets, share, shareGroups: g, dropout, seed: o.seed ?? 0, modulesToSave: o.modulesToSave, init, useRslora, method, train, tiedTrain, dInitial, projectionSeed };
}

/**
 * The partition of layers 0..layers-1 that `shareGroups` names, each group
 * sorted and the groups ordered by their first layer, so that two spellings
 * of one grouping compare equal.
 */
export function resolveGroups(shareGroups: number | number[][] | undefined, layers: number, field = 'shareGroups', file?: string): number[][] {
  if (shareGroups === undefined) return [Array.from({ length: layers }, (_, i) => i)];
  if (typeof shareGroups === 'number') {
    if (!Number.isSafeInteger(shareGroups) || shareGroups < 1) throw new AdapterConfigError(field, `must be a positive integer, got ${shareGroups}`, file);
    if (shareGroups > layers) throw new AdapterConfigError(field, `blocks of ${shareGroups} layers, but the model has ${layers} (${layers} shares across all of them)`, file);
    const out: number[][] = [];
    for (let s = 0; s < layers; s += shareGroups) out.push(Array.from({ length: Math.min(shareGroups, layers - s) }, (_, i) => s + i));
    return out;
  }
  const owner = new Map<number, number>();
  shareGroups.forEach((grp, gi) => {
    for (const l of grp) {
      if (!Number.isSafeInteger(l) || l < 0 || l >= layers) throw new AdapterConfigError(field, `group ${gi} names layer ${JSON.stringify(l)}, but the model's layers are 0 to ${layers - 1}`, file);
      if (owner.has(l)) throw new AdapterConfigError(field, `layer ${l} is in ${owner.get(l) === gi ? `group ${gi} twice` : `groups ${owner.get(l)} and ${gi}`}; the groups must partition the layers (each layer exactly once)`, file);
      owner.set(l, gi);
    }
  });
  const missing = Array.from({ length: layers }, (_, i) => i).filter((l) => !owner.has(l));
  if (missing.length) throw new AdapterConfigError(field, `layer${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} in no group; the groups must partition the layers 0 to ${layers - 1} (each layer exactly once)`, file);
  return shareGroups.map((grp) => [...grp].sort((a, b) => a - b)).sort((a, b) => a[0] - b[0]);
}
