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
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fileKey, loraKey } from './names.js';
import { injectShareLoRA, type ShareLoraAdapter } from './sharelora.js';
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
 * Load a PEFT LoRA folder onto a model, restoring ShareLoRA ties. Every
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
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw new AdapterConfigError('peft_type', `is ${JSON.stringify(c.peft_type)}, only "LORA" adapters can be loaded`, cfgFile);
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
  const explicitGroups = opts.share !== undefined && opts.share !== 'none' ? resolveGroups(opts.shareGroups, model.numLayers) : undefined;
  const found = inFile(() => findTargets(model, targets), cfgFile);

  const file = readSafetensors(wFile);
  const r = c.r as number;
  const used = new Set<string>();
  const get = (k: string, shape: number[]): RawTensor => {
    const t = file.tensors.get(k);
    if (!t) throw new CheckpointError(wFile, `tensor "${k}" is missing (adapter made for another model?)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new CheckpointError(wFile, `tensor "${k}" has shape [${t.shape}], expected [${shape}] (adapter made for another model or rank?)`);
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(wFile, `tensor "${k}" has dtype ${t.dtype}; adapter weights must be floating point`);
    if (!used.has(k)) {
      const bad = t.data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new CheckpointError(wFile, `tensor "${k}" holds ${t.data[bad]} at element ${bad}; adapter weights must be finite`);
    }
    used.add(k);
    return t;
  };
  // shapes first: r and the module sizes then cannot ask for more memory than the file holds
  for (const t of found) {
    get(loraKey(t.path, 'A'), [r, t.linear.inFeatures]);
    get(loraKey(t.path, 'B'), [t.linear.outFeatures, r]);
  }
  let share: Share, groups: number[][] | undefined;
  if (opts.share !== undefined) {
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
  const adapter = inFile(() => injectShareLoRA(model, {
    r, alpha: c.lora_alpha as number, targets, share, shareGroups: groups, dropout: (c.lora_dropout as number | null | undefined) ?? 0,
    modulesToSave: (mts as string[] | null) ?? [], useRslora: c.use_rslora === true, seed: opts.seed,
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
