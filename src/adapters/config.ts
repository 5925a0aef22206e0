/** ShareLoRA options, their defaults, and the check that fills them in. */

export type Share = 'none' | 'A' | 'B' | 'AB';
export const SHARES: readonly Share[] = ['none', 'A', 'B', 'AB'];

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
  /** which matrix is tied across layers, separately for each target. Default 'A' (the paper's). */
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
}

export class AdapterConfigError extends Error {
  constructor(public readonly field: string, message: string, public readonly file?: string) {
    super(`${file ? `${file}: ` : ''}${field}: ${message}`);
    this.name = 'AdapterConfigError';
  }
}

const KNOWN: ReadonlySet<string> = new Set(['r', 'alpha', 'targets', 'share', 'shareGroups', 'dropout', 'seed', 'modulesToSave', 'init', 'useRslora']);
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
  const r = o.r ?? 8;
  if (!Number.isSafeInteger(r) || r < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(o.r)}`, file);
  const alpha = o.alpha ?? 2 * r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new AdapterConfigError('alpha', `must be a finite number, got ${JSON.stringify(o.alpha)}`, file);
  const useRslora = o.useRslora ?? false;
  if (typeof useRslora !== 'boolean') throw new AdapterConfigError('useRslora', `must be true or false, got ${JSON.stringify(o.useRslora)}`, file);
  const scaling = useRslora ? alpha / Math.sqrt(r) : alpha / r;
  if (Math.abs(scaling) > MAX_SCALING) throw new AdapterConfigError('alpha', `${alpha} gives a scaling alpha/${useRslora ? 'sqrt(r)' : 'r'} of ${scaling}; at most ${MAX_SCALING} in magnitude is accepted (larger only overflows the first forward)`, file);
  const share = o.share ?? 'A';
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
  return { r, alpha, targets, share, shareGroups: g, dropout, seed: o.seed ?? 0, modulesToSave: o.modulesToSave, init, useRslora };
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
