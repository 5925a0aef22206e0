/**
 * Loading PEFT folders (save.ts writes them), restoring ShareLoRA ties. A
 * folder holds every layer's copy of a tied tensor, and one that PEFT wrote
 * has no `sharelora` record (PEFT drops unknown keys). Where the sharing
 * comes from, strongest first:
 *   1. loadAdapter's `share` / `shareGroups` options;
 *   2. the recorded `sharelora` fields;
 *   3. for a folder PEFT wrote, copies that are identical and non-zero in
 *      every target. Zero copies are no evidence: PEFT initialises every B to
 *      zero, so an untrained LoRA would otherwise come back as ShareB.
 * 1 and 2 are checked against the tensors: a tie whose copies differ is an error.
 * A VeRA folder (peft_type VERA) and a Tied-LoRA one (whose per-layer copies
 * differ by design) take their own paths, loadVera and loadTied, at the end.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, type RawTensor } from '../models/safetensors.js';
import { readJsonFile } from '../util/json.js';
import { CheckpointError } from '../util/errors.js';
import type { Model } from '../models/types.js';
import { AdapterConfigError, MAX_SCALING, resolveGroups, type Share, SHARES } from './config.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fileKey, loraKey, PEFT_PREFIX, TIED_FACTORS, VERA_A, VERA_B } from './names.js';
import { injectForLoad, type ShareLoraAdapter } from './sharelora.js';
import { findTargets, type Target } from './targets.js';

export { saveAdapter } from './save.js';

function readJson(file: string): Record<string, unknown> {
  const raw = readJsonFile(file, 'adapter config');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(file, 'adapter config is not a JSON object');
  return raw as Record<string, unknown>;
}

function sameValues(a: RawTensor, b: RawTensor): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** Errors raised while applying a config name the config file. */
function inFile<T>(f: () => T, file: string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AdapterConfigError && !e.file) throw new AdapterConfigError(e.field, e.message.slice(e.field.length + 2), file);
    throw e;
  }
}

/**
 * PEFT full-matches a string target_modules as a regex. A hostile pattern
 * such as (a|a)*b backtracks for ever, so it is first run over this model's
 * module names under a time limit.
 */
function targetRegex(pattern: string, model: Model, file: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new AdapterConfigError('target_modules', `is not a valid regular expression (${(e as Error).message})`, file);
  }
  try {
    vm.runInNewContext('for (const p of paths) re.test(p)', { re, paths: [...model.linears.keys()] }, { timeout: 1000 });
  } catch {
    throw new AdapterConfigError('target_modules', `regular expression ${JSON.stringify(pattern.slice(0, 200))} takes over 1 s to match this model's module names`, file);
  }
  return re;
}

const byRole = (found: Target[]) => {
  const out = new Map<string, Target[]>();
  for (const t of found) out.set(t.role, [...(out.get(t.role) ?? []), t]);
  return out;
};

const isZero = (t: RawTensor) => t.data.every((x) => x === 0);

/** A shape- and finiteness-checked getter over one file's tensors, remembering which were read (the rest are an error). */
function reader(tensors: Map<string, RawTensor>, wFile: string) {
  const used = new Set<string>();
  const get = (k: string, shape: number[]): RawTensor & { data: Float32Array } => {
    const t = tensors.get(k);
    if (!t) throw new CheckpointError(wFile, `tensor "${k}" is missing (adapter made for another model?)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new CheckpointError(wFile, `tensor "${k}" has shape [${t.shape}], expected [${shape}] (adapter made for another model or rank?)`);
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(wFile, `tensor "${k}" has dtype ${t.dtype}; adapter weights must be floating point`);
    if (!used.has(k)) {
      const bad = t.data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new CheckpointError(wFile, `tensor "${k}" holds ${t.data[bad]} at element ${bad}; adapter weights must be finite`);
    }
    used.add(k);
    return t as RawTensor & { data: Float32Array };
  };
  const assign = (v: tf.Variable, k: string) => {
    const t = get(k, v.shape);
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
  };
  const noExtra = (model: Model) => {
    const extra = [...tensors.keys()].filter((k) => !used.has(k));
    if (extra.length) throw new CheckpointError(wFile, `${extra.length} tensor(s) fit no adapted module of this ${model.family} model, e.g. "${extra[0]}" (adapter made for another model?)`);
  };
  return { get, used, assign, noExtra };
}

const METHOD_RECORDS = ['lora', 'lora-fa', 'tied-lora'] as const;

/**
 * Layers tied in `which`, from a folder that does not say: within each role,
 * layers whose copies are identical and non-zero form a group; the grouping
 * counts only if every role gives the same one (a tie is per layer, not per
 * role). undefined when nothing is tied.
 */
function detectGroups(found: Target[], tensors: Map<string, RawTensor>, which: 'A' | 'B', layers: number): number[][] | undefined {
  let agreed: string | undefined;
  for (const ts of byRole(found).values()) {
    const groups: Target[][] = [];
    for (const t of ts) {
      const x = tensors.get(loraKey(t.path, which))!;
      const g = isZero(x) ? undefined : groups.find((g) => sameValues(tensors.get(loraKey(g[0].path, which))!, x));
      if (g) g.push(t);
      else groups.push([t]);
    }
    const seen = new Set(ts.map((t) => t.layer));
    // layers this role does not adapt are their own groups, so every role spells a partition of all layers
    const all = [...groups.map((g) => g.map((t) => t.layer)), ...Array.from({ length: layers }, (_, i) => i).filter((l) => !seen.has(l)).map((l) => [l])];
    const canon = JSON.stringify(resolveGroups(all, layers));
    if (agreed !== undefined && canon !== agreed) return undefined;
    agreed = canon;
  }
  const groups = JSON.parse(agreed!) as number[][];
  return groups.length < layers ? groups : undefined;
}

/** ShareA/B/AB and their groups, inferred from the copies (see the file comment). */
function detectShare(found: Target[], tensors: Map<string, RawTensor>, layers: number): { share: Share; groups?: number[][] } {
  const a = detectGroups(found, tensors, 'A', layers), b = detectGroups(found, tensors, 'B', layers);
  if (a && b) return JSON.stringify(a) === JSON.stringify(b) ? { share: 'AB', groups: a } : { share: 'none' }; // one grouping per adapter: untied loads exactly
  return a ? { share: 'A', groups: a } : b ? { share: 'B', groups: b } : { share: 'none' };
}

/** The first copy that breaks a tie of `share` within `groups`: role, matrix, the group's first layer and the layer that differs. */
function brokenTie(found: Target[], tensors: Map<string, RawTensor>, share: Share, groups: number[][]): { role: string; which: 'A' | 'B'; first: Target; other: Target; group: number[] } | undefined {
  for (const [role, ts] of byRole(found)) {
    for (const which of ['A', 'B'] as const) {
      if (!share.includes(which)) continue;
      for (const group of groups) {
        const members = ts.filter((t) => group.includes(t.layer));
        const other = members.find((t) => !sameValues(tensors.get(loraKey(members[0].path, which))!, tensors.get(loraKey(t.path, which))!));
        if (other) return { role, which, first: members[0], other, group };
      }
    }
  }
  return undefined;
}

export interface LoadAdapterOptions {
  /** seed for dropout masks: training state that PEFT's format does not keep (checkpoints pass it back) */
  seed?: number;
  /** the sharing to load with, over what the folder records or its copies suggest; checked against the copies */
  share?: Share;
  /** with `share`: the layer groups (as injectShareLoRA's shareGroups); default all layers in one group */
  shareGroups?: number | number[][];
}

/** PEFT task types; only these two have a head here */
const TASKS: Record<string, 'causal-lm' | 'seq-cls'> = { CAUSAL_LM: 'causal-lm', SEQ_CLS: 'seq-cls' };

/**
 * Load a PEFT LoRA or VeRA folder onto a model, restoring ShareLoRA ties and
 * what `sharelora.method` records (LoRA-FA's frozen A, Tied-LoRA's factors). Every
 * tensor's shape is checked against the model before anything is allocated
 * from the config's numbers, and a tensor that fits no module is an error.
 * @example const adapter = await loadAdapter(model, 'adapters/sst2-shareA');
 */
export async function loadAdapter(model: Model, dir: string, opts: LoadAdapterOptions = {}): Promise<ShareLoraAdapter> {
  checkOptions('loadAdapter', opts, optionKeys<LoadAdapterOptions>()(['seed', 'share', 'shareGroups']));
  if (opts.share !== undefined && !SHARES.includes(opts.share)) throw new AdapterConfigError('share', `must be one of ${SHARES.map((x) => `'${x}'`).join(', ')}, got ${JSON.stringify(opts.share)}`);
  if (opts.shareGroups !== undefined && opts.share === undefined) throw new AdapterConfigError('shareGroups', "needs share ('A', 'B' or 'AB') beside it: the groups of a sharing the folder chooses would be a guess");
  const cfgFile = join(dir, ADAPTER_CONFIG);
  const wFile = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(cfgFile)) throw new CheckpointError(cfgFile, 'missing (expected a PEFT adapter folder)');
  if (!existsSync(wFile)) throw new CheckpointError(wFile, existsSync(join(dir, 'adapter_model.bin')) ? 'missing; adapter_model.bin (pickle) is not supported, re-save with safe_serialization=True' : 'missing');
  const c = readJson(cfgFile);
  if (c.peft_type === 'VERA') return loadVera(model, dir, c, opts);
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw new AdapterConfigError('peft_type', `is ${JSON.stringify(c.peft_type)}, only "LORA" and "VERA" adapters can be loaded`, cfgFile);
  if (c.use_dora === true) throw new AdapterConfigError('use_dora', 'DoRA adapters are not supported', cfgFile);
  if (c.bias !== undefined && c.bias !== 'none') throw new AdapterConfigError('bias', `is ${JSON.stringify(c.bias)}; only "none" is supported`, cfgFile);
  for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
    if (c[k] && typeof c[k] === 'object' && Object.keys(c[k] as object).length) throw new AdapterConfigError(k, 'per-module ranks/alphas are not supported', cfgFile);
  }
  if (c.task_type !== undefined && c.task_type !== null && !Object.hasOwn(TASKS, c.task_type as string)) {
    throw new AdapterConfigError('task_type', `is ${JSON.stringify(c.task_type)}; only ${Object.keys(TASKS).map((t) => `"${t}"`).join(' and ')} adapters (or none) are supported: there is no ${JSON.stringify(c.task_type)} head here`, cfgFile);
  }
  const task = c.task_type === undefined || c.task_type === null ? undefined : TASKS[c.task_type as string];
  if (task && task !== model.task) throw new AdapterConfigError('task_type', `is ${c.task_type} but this ${model.family} model is ${model.task} (adapter made for another model?)`, cfgFile);
  if (!Number.isSafeInteger(c.r) || (c.r as number) < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(c.r)}`, cfgFile);
  if (typeof c.lora_alpha !== 'number') throw new AdapterConfigError('lora_alpha', `must be a number, got ${JSON.stringify(c.lora_alpha)}`, cfgFile);
  if (c.use_rslora !== undefined && c.use_rslora !== null && typeof c.use_rslora !== 'boolean') throw new AdapterConfigError('use_rslora', `must be true or false, got ${JSON.stringify(c.use_rslora)}`, cfgFile);
  {
    const scaling = c.use_rslora === true ? c.lora_alpha / Math.sqrt(c.r as number) : c.lora_alpha / (c.r as number);
    if (!(Math.abs(scaling) <= MAX_SCALING)) throw new AdapterConfigError('lora_alpha', `${c.lora_alpha} with r ${c.r} gives a scaling of ${scaling}; at most ${MAX_SCALING} in magnitude is accepted (larger only overflows the first forward)`, cfgFile);
  }
  if (c.lora_dropout !== undefined && c.lora_dropout !== null && typeof c.lora_dropout !== 'number') throw new AdapterConfigError('lora_dropout', `must be a number, got ${JSON.stringify(c.lora_dropout)}`, cfgFile);
  const tm = c.target_modules;
  let targets: string[] | RegExp;
  if (typeof tm === 'string') targets = targetRegex(tm, model, cfgFile);
  else if (Array.isArray(tm) && tm.length && tm.every((t) => typeof t === 'string')) targets = tm as string[];
  else throw new AdapterConfigError('target_modules', `must be a list of module names or a regex string, got ${JSON.stringify(tm)}`, cfgFile);
  const mts = c.modules_to_save;
  if (mts !== null && mts !== undefined && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) throw new AdapterConfigError('modules_to_save', `must be a list of module names or null, got ${JSON.stringify(mts)}`, cfgFile);
  const sl = c.sharelora;
  if (sl !== undefined && sl !== null && (typeof sl !== 'object' || Array.isArray(sl))) throw new AdapterConfigError('sharelora', `must be an object, got ${JSON.stringify(sl)}`, cfgFile);
  const recorded = (sl as { share?: unknown } | null | undefined)?.share;
  if (recorded !== undefined && !SHARES.includes(recorded as Share)) throw new AdapterConfigError('sharelora.share', `must be one of ${SHARES.join(', ')}, got ${JSON.stringify(recorded)}`, cfgFile);
  const recordedGroups = (sl as { share_groups?: unknown } | null | undefined)?.share_groups;
  if (recordedGroups !== undefined) {
    if (recorded === undefined || recorded === 'none') throw new AdapterConfigError('sharelora.share_groups', `is given but sharelora.share is ${JSON.stringify(recorded)}: groups need a shared matrix`, cfgFile);
    if (!Array.isArray(recordedGroups) || !recordedGroups.length || !recordedGroups.every((g) => Array.isArray(g) && g.length && g.every((l) => Number.isSafeInteger(l)))) {
      throw new AdapterConfigError('sharelora.share_groups', `must be a list of non-empty lists of layer indices, got ${JSON.stringify(recordedGroups)}`, cfgFile);
    }
    resolveGroups(recordedGroups as number[][], model.numLayers, 'sharelora.share_groups', cfgFile);
  }
  const method = (sl as { method?: unknown } | null | undefined)?.method ?? 'lora';
  if (!METHOD_RECORDS.includes(method as typeof METHOD_RECORDS[number])) throw new AdapterConfigError('sharelora.method', `must be one of ${METHOD_RECORDS.join(', ')} in a LORA folder, got ${JSON.stringify(method)}`, cfgFile);
  if (method === 'tied-lora') {
    if (opts.share !== undefined && opts.share !== 'AB') throw new AdapterConfigError('share', `'${opts.share}' cannot load a Tied-LoRA folder: its A and B are both tied`, cfgFile);
    if (recorded !== 'AB') throw new AdapterConfigError('sharelora.share', `must be 'AB' for sharelora.method 'tied-lora', got ${JSON.stringify(recorded)}`, cfgFile);
  }
  const explicitGroups = opts.share !== undefined && opts.share !== 'none' ? resolveGroups(opts.shareGroups, model.numLayers) : undefined;
  const found = inFile(() => findTargets(model, targets), cfgFile);

  const file = readSafetensors(wFile);
  const r = c.r as number;
  const { get, used } = reader(file.tensors, wFile);
  // shapes first: r and the module sizes then cannot ask for more memory than the file holds
  for (const t of found) {
    get(loraKey(t.path, 'A'), [r, t.linear.inFeatures]);
    get(loraKey(t.path, 'B'), [t.linear.outFeatures, r]);
  }
  let share: Share, groups: number[][] | undefined;
  if (method === 'tied-lora') {
    // the file holds each layer's diag(u)·A and diag(v)·B, which differ by design; the exact factors are in the sidecar
    groups = opts.share !== undefined ? explicitGroups! : resolveGroups(recordedGroups as number[][] | undefined, model.numLayers);
    return loadTied(model, dir, { r, alpha: c.lora_alpha as number, targets, groups, dropout: (c.lora_dropout as number | null | undefined) ?? 0, modulesToSave: (mts as string[] | null) ?? [], useRslora: c.use_rslora === true, seed: opts.seed, tiedTrain: (sl as { tied_train?: unknown }).tied_train }, file.tensors, get, used, cfgFile, wFile);
  } else if (opts.share !== undefined) {
    share = opts.share;
    groups = explicitGroups;
    const broken = brokenTie(found, file.tensors, share, groups ?? []);
    if (broken) throw new AdapterConfigError('share', `'${share}'${opts.shareGroups !== undefined ? ` with shareGroups ${JSON.stringify(groups)}` : ''} ties lora_${broken.which} of ${broken.role} across layers ${broken.group.join(', ')}, but layer ${broken.other.layer}'s copy differs from layer ${broken.first.layer}'s (${loraKey(broken.other.path, broken.which)})`, wFile);
  } else if (recorded !== undefined) {
    share = recorded as Share;
    groups = share === 'none' ? undefined : resolveGroups(recordedGroups as number[][] | undefined, model.numLayers);
    const broken = brokenTie(found, file.tensors, share, groups ?? []);
    if (broken) throw new CheckpointError(wFile, `tensor "${loraKey(broken.other.path, broken.which)}" differs from layer ${broken.first.layer}'s although ${ADAPTER_CONFIG} records lora_${broken.which} of ${broken.role} as shared by layers ${broken.group.join(', ')} (sharelora.share '${share}')`);
  } else {
    ({ share, groups } = detectShare(found, file.tensors, model.numLayers));
  }
  const adapter = inFile(() => injectForLoad(model, {
    r, alpha: c.lora_alpha as number, targets, share, shareGroups: groups, dropout: (c.lora_dropout as number | null | undefined) ?? 0,
    modulesToSave: (mts as string[] | null) ?? [], useRslora: c.use_rslora === true, seed: opts.seed, ...(method === 'lora-fa' && { method: 'lora-fa' as const }),
  }), cfgFile);
  try {
    const seen = new Set<tf.Variable>();
    for (const m of adapter.modules) {
      for (const which of ['A', 'B'] as const) {
        const v = which === 'A' ? m.hook.A : m.hook.B;
        const k = loraKey(m.path, which);
        const t = get(k, v.shape);
        // the other copies of a tied tensor were checked equal to this one before injecting
        if (seen.has(v)) continue;
        seen.add(v);
        tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, t.shape)));
      }
    }
    for (const [name, v] of adapter.namedParameters()) {
      if (!name.includes('.modules_to_save.')) continue;
      const t = get(fileKey(name), v.shape);
      tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, t.shape)));
    }
    const extra = [...file.tensors.keys()].filter((k) => !used.has(k));
    if (extra.length) throw new CheckpointError(wFile, `${extra.length} tensor(s) fit no adapted module of this ${model.family} model, e.g. "${extra[0]}" (adapter made for another model?)`);
  } catch (e) {
    adapter.unload();
    throw e;
  }
  return adapter;
}

/**
 * A Tied-LoRA folder: PEFT's LoRA layout holds each layer's folded factors
 * (so PEFT computes the same ΔW), sharelora_factors.safetensors the tied A
 * and B once and each layer's u and v. The exact factors are loaded from the
 * latter and checked to fold into the former.
 */
async function loadTied(
  model: Model, dir: string,
  o: { r: number; alpha: number; targets: string[] | RegExp; groups: number[][]; dropout: number; modulesToSave: string[]; useRslora: boolean; seed?: number; tiedTrain: unknown },
  main: Map<string, RawTensor>, getMain: ReturnType<typeof reader>['get'], usedMain: Set<string>, cfgFile: string, wFile: string,
): Promise<ShareLoraAdapter> {
  const fFile = join(dir, TIED_FACTORS);
  if (!existsSync(fFile)) throw new CheckpointError(fFile, `missing: ${ADAPTER_CONFIG} records a Tied-LoRA adapter, whose exact factors live in this file (the folded copies in ${ADAPTER_WEIGHTS} cannot be split back into A, B, u and v)`);
  if (typeof o.tiedTrain !== 'string') throw new AdapterConfigError('sharelora.tied_train', `must be a string such as 'VBUA', got ${JSON.stringify(o.tiedTrain)}`, cfgFile);
  const adapter = inFile(() => injectForLoad(model, {
    method: 'tied-lora', tiedTrain: o.tiedTrain as string, r: o.r, alpha: o.alpha, targets: o.targets, shareGroups: o.groups, dropout: o.dropout,
    modulesToSave: o.modulesToSave, useRslora: o.useRslora, seed: o.seed,
  }), cfgFile);
  try {
    const factors = reader(readSafetensors(fFile).tensors, fFile);
    for (const [name, v] of [...adapter.namedParameters(), ...adapter.frozenParameters()]) {
      if (!name.includes('.modules_to_save.')) { factors.assign(v, fileKey(name)); continue; }
      const t = getMain(fileKey(name), v.shape);
      tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
    }
    factors.noExtra(model);
    for (const m of adapter.modules) {
      // read asynchronously: webgpu cannot read back synchronously in Node
      const ts = tf.tidy(() => m.hook.factors().map((t) => tf.clone(t)));
      const folded = await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose(ts);
      (['A', 'B'] as const).forEach((which, i) => {
        const k = loraKey(m.path, which);
        const want = getMain(k, [...(which === 'A' ? [o.r, m.linear.inFeatures] : [m.linear.outFeatures, o.r])]).data as Float32Array;
        let scale = 0, err = 0;
        for (let j = 0; j < want.length; j++) { scale = Math.max(scale, Math.abs(want[j])); err = Math.max(err, Math.abs(want[j] - folded[i][j])); }
        if (err > 1e-6 * scale) throw new CheckpointError(wFile, `tensor "${k}" is not what ${TIED_FACTORS} folds to (max difference ${err}): the two files are from different saves`);
      });
    }
    const extra = [...main.keys()].filter((k) => !usedMain.has(k));
    if (extra.length) throw new CheckpointError(wFile, `${extra.length} tensor(s) fit no adapted module of this ${model.family} model, e.g. "${extra[0]}" (adapter made for another model?)`);
  } catch (e) {
    adapter.unload();
    throw e;
  }
  return adapter;
}

/**
 * A PEFT VeRA folder: frozen projections base_model.vera_A [r, max d_in] and
 * vera_B [max d_out, r] (or, with save_projection false, redrawn from
 * projection_prng_key by torch's generator), and each projection's
 * vera_lambda_b [d_out] and vera_lambda_d [r].
 */
function loadVera(model: Model, dir: string, c: Record<string, unknown>, opts: LoadAdapterOptions): ShareLoraAdapter {
  const cfgFile = join(dir, ADAPTER_CONFIG), wFile = join(dir, ADAPTER_WEIGHTS);
  if (opts.share !== undefined) throw new AdapterConfigError('share', 'does not apply to a VeRA folder: its A and B are shared by every adapted projection by construction', cfgFile);
  if (c.bias !== undefined && c.bias !== 'none') throw new AdapterConfigError('bias', `is ${JSON.stringify(c.bias)}; only "none" is supported`, cfgFile);
  for (const k of ['layers_to_transform', 'layers_pattern'] as const) if (c[k] !== undefined && c[k] !== null) throw new AdapterConfigError(k, `is ${JSON.stringify(c[k])}; adapting only some layers is not supported`, cfgFile);
  if (c.task_type !== undefined && c.task_type !== null && TASKS[c.task_type as string] !== model.task) throw new AdapterConfigError('task_type', `is ${JSON.stringify(c.task_type)} but this ${model.family} model is ${model.task}`, cfgFile);
  if (!Number.isSafeInteger(c.r) || (c.r as number) < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(c.r)}`, cfgFile);
  const num = (k: string, dflt: number) => {
    const v = c[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new AdapterConfigError(k, `must be a number, got ${JSON.stringify(c[k])}`, cfgFile);
    return v;
  };
  const dropout = num('vera_dropout', 0), dInitial = num('d_initial', 0.1), key = num('projection_prng_key', 0);
  if (c.save_projection !== undefined && typeof c.save_projection !== 'boolean') throw new AdapterConfigError('save_projection', `must be true or false, got ${JSON.stringify(c.save_projection)}`, cfgFile);
  const tm = c.target_modules;
  let targets: string[] | RegExp;
  if (typeof tm === 'string') targets = targetRegex(tm, model, cfgFile);
  else if (Array.isArray(tm) && tm.length && tm.every((t) => typeof t === 'string')) targets = tm as string[];
  else throw new AdapterConfigError('target_modules', `must be a list of module names or a regex string, got ${JSON.stringify(tm)}`, cfgFile);
  const mts = c.modules_to_save;
  if (mts !== null && mts !== undefined && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) throw new AdapterConfigError('modules_to_save', `must be a list of module names or null, got ${JSON.stringify(mts)}`, cfgFile);
  const found = inFile(() => findTargets(model, targets), cfgFile);
  const r = c.r as number;
  const file = readSafetensors(wFile);
  const { get, assign, noExtra } = reader(file.tensors, wFile);
  const dIn = Math.max(...found.map((t) => t.linear.inFeatures)), dOut = Math.max(...found.map((t) => t.linear.outFeatures));
  // shapes first, so the config's r cannot ask for memory the file does not back
  for (const t of found) {
    get(`${PEFT_PREFIX}${t.path}.vera_lambda_b`, [t.linear.outFeatures]);
    get(`${PEFT_PREFIX}${t.path}.vera_lambda_d`, [r]);
  }
  const saved = file.tensors.has(fileKey(VERA_A)) || file.tensors.has(fileKey(VERA_B));
  if (saved) {
    get(fileKey(VERA_A), [r, dIn]);
    get(fileKey(VERA_B), [dOut, r]);
  } else if (c.save_projection !== false) {
    throw new CheckpointError(wFile, `has no "${fileKey(VERA_A)}" / "${fileKey(VERA_B)}" although ${ADAPTER_CONFIG} says save_projection is true`);
  }
  const adapter = inFile(() => injectForLoad(model, {
    method: 'vera', r, targets, dropout, dInitial, projectionSeed: key, modulesToSave: (mts as string[] | null) ?? [], seed: opts.seed,
  }), cfgFile);
  try {
    // without saved projections the ones injectShareLoRA drew from projection_prng_key stay (PEFT does the same)
    for (const [name, v] of adapter.frozenParameters()) if (saved) assign(v, fileKey(name));
    for (const [name, v] of adapter.namedParameters()) assign(v, fileKey(name));
    noExtra(model);
  } catch (e) {
    adapter.unload();
    throw e;
  }
  return adapter;
}
