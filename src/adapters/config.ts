/**
 * The adapter configuration: injectShareLoRA's options, their defaults and
 * checks (AdapterConfig.resolve), and their PEFT adapter_config.json form
 * both ways (toPeftJson, fromPeftJson).
 */
import type { Task } from '../models/types.js';
import { CheckpointError } from '../util/errors.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { ADAPTER_CONFIG, TIED_FACTORS } from './names.js';

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

/** The fields of a resolved configuration: every option checked and defaulted. */
interface AdapterConfigFields {
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

/** every option of injectShareLoRA, listed once: the unknown-key check of every entry point reads this list */
export const ADAPTER_OPTION_KEYS = optionKeys<ShareLoraOptions>()(['r', 'alpha', 'targets', 'share', 'shareGroups', 'dropout', 'seed', 'modulesToSave', 'init', 'useRslora', 'method', 'tiedTrain', 'dInitial', 'projectionSeed']);
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

/** whether `share` ties A (B) across the layers of a group: ShareA and ShareAB (ShareB and ShareAB) */
export const sharesA = (share: Share): boolean => share === 'A' || share === 'AB';
export const sharesB = (share: Share): boolean => share === 'B' || share === 'AB';
/** sharesA or sharesB by the matrix's letter */
export const sharesMatrix = (share: Share, which: 'A' | 'B'): boolean => (which === 'A' ? sharesA(share) : sharesB(share));

/** `share` is one of SHARES, or an error naming `field` */
export function checkShare(share: unknown, field: string, file?: string): Share {
  if (!SHARES.includes(share as Share)) throw new AdapterConfigError(field, `must be one of ${SHARES.map((s) => `'${s}'`).join(', ')}, got ${JSON.stringify(share)}`, file);
  return share as Share;
}

/** the factors a tiedTrain pattern trains: a capital letter in v B u A order */
const tiedFactors = (t: string): Set<TiedFactor> => new Set((['v', 'B', 'u', 'A'] as const).filter((_, i) => t[i] === t[i].toUpperCase()));

const scalingOf = (alpha: number, r: number, useRslora: boolean) => (useRslora ? alpha / Math.sqrt(r) : alpha / r);

/** Where a resolution's errors point: the function that was called (unknown keys) and the file the options came from. */
export interface ResolveContext { where?: string; file?: string }

/**
 * One adapter's configuration, checked and defaulted as a whole, and its
 * PEFT form both ways (toPeftJson, fromPeftJson). Everything that decides
 * what an adapter is reads it from here.
 */
export class AdapterConfig implements Readonly<AdapterConfigFields> {
  readonly r!: number;
  readonly alpha!: number;
  readonly targets!: Array<string> | RegExp;
  readonly share!: Share;
  readonly shareGroups!: number | number[][] | undefined;
  readonly dropout!: number;
  readonly seed!: number;
  readonly modulesToSave!: string[] | undefined;
  readonly init!: 'kaiming' | 'gaussian' | 'random';
  readonly useRslora!: boolean;
  readonly method!: Method;
  readonly train!: ReadonlySet<TiedFactor>;
  readonly tiedTrain!: string | undefined;
  readonly dInitial!: number;
  readonly projectionSeed!: number;

  private constructor(fields: AdapterConfigFields) {
    Object.assign(this, fields);
  }

  /** Check and default injectShareLoRA's options; an unknown key is an OptionsError from `where`, a bad value an AdapterConfigError naming the field (and `file`). */
  static resolve(o: ShareLoraOptions = {}, { where = 'ShareLoraAdapter', file }: ResolveContext = {}): AdapterConfig {
    // a misspelt option (shareGroup, rank) would otherwise be silently ignored; not an object is the same error
    checkOptions(where, o, ADAPTER_OPTION_KEYS);
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
    const scaling = scalingOf(alpha, r, useRslora);
    if (Math.abs(scaling) > MAX_SCALING) throw new AdapterConfigError('alpha', `${alpha} gives a scaling alpha/${useRslora ? 'sqrt(r)' : 'r'} of ${scaling}; at most ${MAX_SCALING} in magnitude is accepted (larger only overflows the first forward)`, file);
    let tiedTrain: string | undefined;
    let train: Set<TiedFactor>;
    if (method === 'tied-lora') {
      tiedTrain = o.tiedTrain ?? 'VBUA';
      if (typeof tiedTrain !== 'string' || !TIED.test(tiedTrain) || tiedTrain === 'vbua') throw new AdapterConfigError('tiedTrain', `must spell v, B, u, A in that order, a capital for each factor that trains and lower case for each frozen one, at least one capital (e.g. 'VBUA', 'vBuA', 'VbUa'), got ${JSON.stringify(o.tiedTrain)}`, file);
      train = tiedFactors(tiedTrain);
    } else {
      train = new Set<TiedFactor>(method === 'lora' ? ['A', 'B'] : method === 'lora-fa' ? ['B'] : ['u', 'v']);
    }
    const dInitial = o.dInitial ?? 0.1;
    if (typeof dInitial !== 'number' || !Number.isFinite(dInitial)) throw new AdapterConfigError('dInitial', `must be a finite number, got ${JSON.stringify(o.dInitial)}`, file);
    const projectionSeed = o.projectionSeed ?? 0;
    if (!Number.isSafeInteger(projectionSeed) || projectionSeed < 0) throw new AdapterConfigError('projectionSeed', `must be a non-negative integer (torch's manual_seed), got ${JSON.stringify(o.projectionSeed)}`, file);
    const share = checkShare(method === 'vera' || method === 'tied-lora' ? 'AB' : o.share ?? (method === 'lora-fa' ? 'none' : 'A'), 'share', file);
    const g = o.shareGroups;
    if (g !== undefined) {
      if (share === 'none') throw new AdapterConfigError('shareGroups', `ties nothing with share 'none'; pass share 'A', 'B' or 'AB'`, file);
      const isK = typeof g === 'number' && Number.isSafeInteger(g) && g >= 1;
      if (!isK && !isPartitionShape(g)) throw new AdapterConfigError('shareGroups', `must be a positive integer k (blocks of k consecutive layers) or a list of non-empty lists of layer indices, got ${JSON.stringify(g)}`, file);
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
    return new AdapterConfig({ r, alpha: method === 'vera' ? 1 : alpha, targets, share, shareGroups: g, dropout, seed: o.seed ?? 0, modulesToSave: o.modulesToSave, init, useRslora, method, train, tiedTrain, dInitial, projectionSeed });
  }

  /** A is one tensor per (role, group) */
  sharesA(): boolean { return sharesA(this.share); }
  /** B is one tensor per (role, group) */
  sharesB(): boolean { return sharesB(this.share); }

  /** ΔW's factor: alpha/r (alpha/sqrt(r) with rsLoRA); VeRA has none, its vectors carry the scale */
  get scaling(): number {
    return this.method === 'vera' ? 1 : scalingOf(this.alpha, this.r, this.useRslora);
  }

  /**
   * adapter_config.json for this configuration. What the options do not say
   * comes from the adapter on its model: `shareGroups` resolved against the
   * model's layers, the PEFT target_modules that find exactly the adapted
   * projections, and the modules actually saved. The tie (share and
   * share_groups) and the method when it is not plain LoRA are kept in
   * `sharelora` (PEFT drops unknown keys): LoRA-FA is PEFT's LoRA layout,
   * Tied-LoRA too with its vectors folded in (exact factors beside it),
   * VeRA PEFT's VERA layout.
   */
  toPeftJson(ctx: PeftContext): Record<string, unknown> {
    const record = this.method === 'lora' ? {} : this.method === 'lora-fa' ? { method: this.method, frozen: ['A'] }
      : this.method === 'tied-lora' ? { method: this.method, tied_train: this.tiedTrain, factors: TIED_FACTORS } : { method: this.method };
    const common = {
      // PEFT has no masked-LM task type; it leaves task_type null for such models
      task_type: PEFT_TASK_TYPE[ctx.task] ?? null,
      base_model_name_or_path: ctx.baseModel ?? null,
      r: this.r,
      target_modules: ctx.targetModules,
      fan_in_fan_out: ctx.fanInFanOut,
      bias: 'none',
      modules_to_save: ctx.modulesToSave.length ? ctx.modulesToSave : null,
      inference_mode: true,
    };
    if (this.method === 'vera') {
      return {
        peft_type: 'VERA', ...common,
        projection_prng_key: this.projectionSeed,
        save_projection: true,
        vera_dropout: this.dropout,
        d_initial: this.dInitial,
        init_weights: this.init !== 'random',
        layers_to_transform: null,
        layers_pattern: null,
        sharelora: { ...record, version: 1 },
      };
    }
    return {
      peft_type: 'LORA', ...common,
      lora_alpha: this.alpha,
      lora_dropout: this.dropout,
      init_lora_weights: true,
      use_rslora: this.useRslora,
      use_dora: false,
      rank_pattern: {},
      alpha_pattern: {},
      sharelora: this.share === 'none' ? { share: this.share, ...record, version: 1 } : { share: this.share, share_groups: ctx.shareGroups, ...record, version: 1 },
    };
  }

  /**
   * What an adapter_config.json (LoRA or VeRA) says, every field checked and
   * the options it implies checked as injectShareLoRA checks them, errors
   * naming `file`. Whatever needs the model is the loader's: the task
   * against the model's, the groups against its layers, the targets against
   * its modules.
   */
  static fromPeftJson(json: unknown, file?: string): PeftAdapterConfig {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new CheckpointError(file ?? ADAPTER_CONFIG, 'adapter config is not a JSON object');
    const c = json as Record<string, unknown>;
    const fail = (field: string, message: string): never => { throw new AdapterConfigError(field, message, file); };
    const peftType = c.peft_type === undefined ? 'LORA' : c.peft_type;
    if (peftType !== 'LORA' && peftType !== 'VERA') fail('peft_type', `is ${JSON.stringify(c.peft_type)}, only "LORA" and "VERA" adapters can be loaded`);
    const vera = peftType === 'VERA';
    if (c.bias !== undefined && c.bias !== 'none') fail('bias', `is ${JSON.stringify(c.bias)}; only "none" is supported`);
    if (c.task_type !== undefined && c.task_type !== null && !Object.hasOwn(TASKS, c.task_type as string)) {
      fail('task_type', `is ${JSON.stringify(c.task_type)}; only ${Object.keys(TASKS).map((t) => `"${t}"`).join(' and ')} adapters (or none) are supported: there is no ${JSON.stringify(c.task_type)} head here`);
    }
    const task = c.task_type === undefined || c.task_type === null ? undefined : TASKS[c.task_type as string];
    if (!Number.isSafeInteger(c.r) || (c.r as number) < 1) fail('r', `must be a positive integer, got ${JSON.stringify(c.r)}`);
    const r = c.r as number;
    const tm = c.target_modules;
    let targets: string[] | RegExp;
    if (typeof tm === 'string') {
      // PEFT full-matches a string target_modules as a regex
      try {
        targets = new RegExp(`^(?:${tm})$`);
      } catch (e) {
        return fail('target_modules', `is not a valid regular expression (${(e as Error).message})`);
      }
    } else if (Array.isArray(tm) && tm.length && tm.every((t) => typeof t === 'string')) targets = tm as string[];
    else return fail('target_modules', `must be a list of module names or a regex string, got ${JSON.stringify(tm)}`);
    const mts = c.modules_to_save;
    if (mts !== null && mts !== undefined && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) fail('modules_to_save', `must be a list of module names or null, got ${JSON.stringify(mts)}`);
    const common = { r, targets, modulesToSave: (mts as string[] | null | undefined) ?? [] };
    const sl = c.sharelora;
    if (sl !== undefined && sl !== null && (typeof sl !== 'object' || Array.isArray(sl))) fail('sharelora', `must be an object, got ${JSON.stringify(sl)}`);
    const rec = (sl ?? {}) as { share?: unknown; share_groups?: unknown; method?: unknown; tied_train?: unknown };
    if (vera) {
      for (const k of ['layers_to_transform', 'layers_pattern'] as const) if (c[k] !== undefined && c[k] !== null) fail(k, `is ${JSON.stringify(c[k])}; adapting only some layers is not supported`);
      const num = (k: string, dflt: number) => {
        const v = c[k] ?? dflt;
        return typeof v === 'number' && Number.isFinite(v) ? v : fail(k, `must be a number, got ${JSON.stringify(c[k])}`);
      };
      const dropout = num('vera_dropout', 0), dInitial = num('d_initial', 0.1), projectionSeed = num('projection_prng_key', 0);
      if (c.save_projection !== undefined && typeof c.save_projection !== 'boolean') fail('save_projection', `must be true or false, got ${JSON.stringify(c.save_projection)}`);
      const options: ShareLoraOptions = { method: 'vera', ...common, dropout, dInitial, projectionSeed };
      AdapterConfig.resolve(options, { where: 'loadAdapter', file });
      return { peftType: 'VERA', task, options, saveProjection: c.save_projection !== false };
    }
    if (c.use_dora === true) fail('use_dora', 'DoRA adapters are not supported');
    for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
      if (c[k] && typeof c[k] === 'object' && Object.keys(c[k] as object).length) fail(k, 'per-module ranks/alphas are not supported');
    }
    if (typeof c.lora_alpha !== 'number') fail('lora_alpha', `must be a number, got ${JSON.stringify(c.lora_alpha)}`);
    const alpha = c.lora_alpha as number;
    if (c.use_rslora !== undefined && c.use_rslora !== null && typeof c.use_rslora !== 'boolean') fail('use_rslora', `must be true or false, got ${JSON.stringify(c.use_rslora)}`);
    const useRslora = c.use_rslora === true;
    const scaling = scalingOf(alpha, r, useRslora);
    if (!(Math.abs(scaling) <= MAX_SCALING)) fail('lora_alpha', `${alpha} with r ${r} gives a scaling of ${scaling}; at most ${MAX_SCALING} in magnitude is accepted (larger only overflows the first forward)`);
    if (c.lora_dropout !== undefined && c.lora_dropout !== null && typeof c.lora_dropout !== 'number') fail('lora_dropout', `must be a number, got ${JSON.stringify(c.lora_dropout)}`);
    const share = rec.share === undefined ? undefined : checkShare(rec.share, 'sharelora.share', file);
    const groups = rec.share_groups;
    if (groups !== undefined) {
      if (share === undefined || share === 'none') fail('sharelora.share_groups', `is given but sharelora.share is ${JSON.stringify(share)}: groups need a shared matrix`);
      if (!isPartitionShape(groups)) fail('sharelora.share_groups', `must be a list of non-empty lists of layer indices, got ${JSON.stringify(groups)}`);
    }
    const method = rec.method ?? 'lora';
    if (!LORA_LAYOUT_METHODS.includes(method as Method)) fail('sharelora.method', `must be one of ${LORA_LAYOUT_METHODS.join(', ')} in a LORA folder, got ${JSON.stringify(method)}`);
    const options: ShareLoraOptions = { ...common, alpha, useRslora, dropout: (c.lora_dropout as number | null | undefined) ?? 0 };
    if (method === 'tied-lora') {
      if (share !== 'AB') fail('sharelora.share', `must be 'AB' for sharelora.method 'tied-lora', got ${JSON.stringify(share)}`);
      if (typeof rec.tied_train !== 'string') fail('sharelora.tied_train', `must be a string such as 'VBUA', got ${JSON.stringify(rec.tied_train)}`);
      Object.assign(options, { method, tiedTrain: rec.tied_train as string });
    } else if (method === 'lora-fa') options.method = method;
    const shareGroups = groups as number[][] | undefined;
    AdapterConfig.resolve({ ...options, ...(method !== 'tied-lora' && share !== undefined && { share }), shareGroups }, { where: 'loadAdapter', file });
    return { peftType: 'LORA', task, options, share, shareGroups };
  }
}

/** @deprecated the name before AdapterConfig; the same type */
export type ResolvedOptions = AdapterConfig;

/** AdapterConfig.resolve under its older name (the public resolveOptions of src/index.ts); `file` names the options' source in errors. */
export function resolveOptions(o: ShareLoraOptions = {}, file?: string): AdapterConfig {
  return AdapterConfig.resolve(o, { file });
}

/** What toPeftJson needs of the adapter on its model beyond the options. */
export interface PeftContext {
  task: Task;
  /** PEFT's target_modules that find exactly the adapted projections (a regex when a suffix would catch others) */
  targetModules: string[] | string;
  /** GPT-2's Conv1D stores [in, out] */
  fanInFanOut: boolean;
  /** the modules trained in full and saved beside the adapter */
  modulesToSave: string[];
  /** the tie's groups, resolved against the model's layers */
  shareGroups: number[][];
  baseModel?: string;
}

/** An adapter_config.json as read by AdapterConfig.fromPeftJson. */
export interface PeftAdapterConfig {
  peftType: 'LORA' | 'VERA';
  /** the head the adapter was made for, if the file says */
  task: 'causal-lm' | 'seq-cls' | undefined;
  /** injectShareLoRA's options, less the sharing (which the loader settles: its options, the record below, or the tensors) */
  options: ShareLoraOptions;
  /** LORA: sharelora.share and share_groups as recorded; absent from a folder PEFT wrote */
  share?: Share;
  shareGroups?: number[][];
  /** VERA: whether the frozen projections are in the weights file (else redrawn from projectionSeed) */
  saveProjection?: boolean;
}

/** PEFT task types; only these two have a head here */
const TASKS: Record<string, 'causal-lm' | 'seq-cls'> = { CAUSAL_LM: 'causal-lm', SEQ_CLS: 'seq-cls' };
const PEFT_TASK_TYPE: Partial<Record<Task, string>> = { 'causal-lm': 'CAUSAL_LM', 'seq-cls': 'SEQ_CLS' };
/** the methods saved in PEFT's LoRA layout (VeRA has its own) */
const LORA_LAYOUT_METHODS: readonly Method[] = ['lora', 'lora-fa', 'tied-lora'];

/** a non-empty list of non-empty lists of integers (a partition's shape; resolveGroups checks it against the layers) */
function isPartitionShape(g: unknown): g is number[][] {
  return Array.isArray(g) && g.length > 0 && g.every((x) => Array.isArray(x) && x.length > 0 && x.every((l) => Number.isSafeInteger(l)));
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
