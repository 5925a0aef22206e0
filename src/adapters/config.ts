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

export function resolveOptions(o: ShareLoraOptions = {}, file?: string): ResolvedOptions {
  const r = o.r ?? 8;
  if (!Number.isSafeInteger(r) || r < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(o.r)}`, file);
  const alpha = o.alpha ?? 2 * r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new AdapterConfigError('alpha', `must be a finite number, got ${JSON.stringify(o.alpha)}`, file);
  const share = o.share ?? 'A';
  if (!SHARES.includes(share)) throw new AdapterConfigError('share', `must be one of ${SHARES.map((s) => `'${s}'`).join(', ')}, got ${JSON.stringify(o.share)}`, file);
  const dropout = o.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new AdapterConfigError('dropout', `must be in [0, 1), got ${JSON.stringify(o.dropout)}`, file);
  const targets = o.targets ?? ['q', 'v'];
  if (!(targets instanceof RegExp) && (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || !t))) {
    throw new AdapterConfigError('targets', `must be a non-empty list of module names or a RegExp, got ${JSON.stringify(o.targets)}`, file);
  }
  const init = o.init ?? 'kaiming';
  if (!['kaiming', 'gaussian', 'random'].includes(init)) throw new AdapterConfigError('init', `must be 'kaiming', 'gaussian' or 'random', got ${JSON.stringify(o.init)}`, file);
  return { r, alpha, targets, share, dropout, seed: o.seed ?? 0, modulesToSave: o.modulesToSave, init, useRslora: o.useRslora ?? false };
}
