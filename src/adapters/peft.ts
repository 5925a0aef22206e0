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
 * adapter_config.json itself is read and checked by AdapterConfig.fromPeftJson
 * (config.ts); what is here needs the model or the tensors.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, type RawTensor } from '../models/safetensors.js';
import { readJsonFile } from '../util/json.js';
import { CheckpointError } from '../util/errors.js';
import type { Model } from '../models/types.js';
import { AdapterConfig, AdapterConfigError, checkShare, resolveGroups, sharesMatrix, type PeftAdapterConfig, type Share, type ShareLoraOptions } from './config.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fileKey, loraKey, PEFT_PREFIX, TIED_FACTORS, VERA_A, VERA_B } from './names.js';
import { injectForLoad, type ShareLoraAdapter } from './sharelora.js';
import { findTargets, type Target } from './targets.js';

export { saveAdapter } from './save.js';

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
 * A hostile target_modules pattern such as (a|a)*b backtracks for ever, so
 * it is first run over this model's module names under a time limit.
 */
function guardRegex(re: RegExp, model: Model, file: string): void {
  try {
    vm.runInNewContext('for (const p of paths) re.test(p)', { re, paths: [...model.linears.keys()] }, { timeout: 1000 });
  } catch {
    throw new AdapterConfigError('target_modules', `regular expression ${JSON.stringify(re.source.slice(4, -2).slice(0, 200))} takes over 1 s to match this model's module names`, file);
  }
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
function detectShare(found: Target[], tensors: Map<string, RawTensor>, layers: number): { share: Share; shareGroups?: number[][] } {
  const a = detectGroups(found, tensors, 'A', layers), b = detectGroups(found, tensors, 'B', layers);
  if (a && b) return JSON.stringify(a) === JSON.stringify(b) ? { share: 'AB', shareGroups: a } : { share: 'none' }; // one grouping per adapter: untied loads exactly
  return a ? { share: 'A', shareGroups: a } : b ? { share: 'B', shareGroups: b } : { share: 'none' };
}

/** The first copy that breaks a tie of `share` within `groups`: role, matrix, the group's first layer and the layer that differs. */
function brokenTie(found: Target[], tensors: Map<string, RawTensor>, share: Share, groups: number[][]): { role: string; which: 'A' | 'B'; first: Target; other: Target; group: number[] } | undefined {
  for (const [role, ts] of byRole(found)) {
    for (const which of ['A', 'B'] as const) {
      if (!sharesMatrix(share, which)) continue;
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

const LOAD_KEYS = optionKeys<LoadAdapterOptions>()(['seed', 'share', 'shareGroups']);

/**
 * Load a PEFT LoRA or VeRA folder onto a model, restoring ShareLoRA ties and
 * what `sharelora.method` records (LoRA-FA's frozen A, Tied-LoRA's factors). Every
 * tensor's shape is checked against the model before anything is allocated
 * from the config's numbers, and a tensor that fits no module is an error.
 * @example const adapter = await loadAdapter(model, 'adapters/sst2-shareA');
 */
export async function loadAdapter(model: Model, dir: string, opts: LoadAdapterOptions = {}): Promise<ShareLoraAdapter> {
  checkOptions('loadAdapter', opts, LOAD_KEYS);
  if (opts.share !== undefined) checkShare(opts.share, 'share');
  if (opts.shareGroups !== undefined && opts.share === undefined) throw new AdapterConfigError('shareGroups', "needs share ('A', 'B' or 'AB') beside it: the groups of a sharing the folder chooses would be a guess");
  const cfgFile = join(dir, ADAPTER_CONFIG);
  const wFile = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(cfgFile)) throw new CheckpointError(cfgFile, 'missing (expected a PEFT adapter folder)');
  if (!existsSync(wFile)) throw new CheckpointError(wFile, existsSync(join(dir, 'adapter_model.bin')) ? 'missing; adapter_model.bin (pickle) is not supported, re-save with safe_serialization=True' : 'missing');
  const peft = AdapterConfig.fromPeftJson(readJsonFile(cfgFile, 'adapter config'), cfgFile);
  if (peft.peftType === 'VERA' && opts.share !== undefined) throw new AdapterConfigError('share', 'does not apply to a VeRA folder: its A and B are shared by every adapted projection by construction', cfgFile);
  if (peft.task && peft.task !== model.task) throw new AdapterConfigError('task_type', `is ${PEFT_TASK[peft.task]} but this ${model.family} model is ${model.task} (adapter made for another model?)`, cfgFile);
  const { targets } = peft.options;
  if (targets instanceof RegExp) guardRegex(targets, model, cfgFile);
  if (peft.peftType === 'VERA') return loadVera(model, dir, peft, opts);
  if (peft.shareGroups) resolveGroups(peft.shareGroups, model.numLayers, 'sharelora.share_groups', cfgFile);
  const method = peft.options.method ?? 'lora';
  if (method === 'tied-lora' && opts.share !== undefined && opts.share !== 'AB') throw new AdapterConfigError('share', `'${opts.share}' cannot load a Tied-LoRA folder: its A and B are both tied`, cfgFile);
  const explicitGroups = opts.share !== undefined && opts.share !== 'none' ? resolveGroups(opts.shareGroups, model.numLayers) : undefined;
  const found = inFile(() => findTargets(model, targets!), cfgFile);

  const file = readSafetensors(wFile);
  const r = peft.options.r!;
  const { get, used } = reader(file.tensors, wFile);
  // shapes first: r and the module sizes then cannot ask for more memory than the file holds
  for (const t of found) {
    get(loraKey(t.path, 'A'), [r, t.linear.inFeatures]);
    get(loraKey(t.path, 'B'), [t.linear.outFeatures, r]);
  }
  if (method === 'tied-lora') {
    // the file holds each layer's diag(u)·A and diag(v)·B, which differ by design; the exact factors are in the sidecar
    const shareGroups = opts.share !== undefined ? explicitGroups! : resolveGroups(peft.shareGroups, model.numLayers);
    return loadTied(model, dir, { ...peft.options, r, shareGroups, seed: opts.seed }, file.tensors, get, used, cfgFile, wFile);
  }
  let share: Share, shareGroups: number[][] | undefined;
  if (opts.share !== undefined) {
    share = opts.share;
    shareGroups = explicitGroups;
    const broken = brokenTie(found, file.tensors, share, shareGroups ?? []);
    if (broken) throw new AdapterConfigError('share', `'${share}'${opts.shareGroups !== undefined ? ` with shareGroups ${JSON.stringify(shareGroups)}` : ''} ties lora_${broken.which} of ${broken.role} across layers ${broken.group.join(', ')}, but layer ${broken.other.layer}'s copy differs from layer ${broken.first.layer}'s (${loraKey(broken.other.path, broken.which)})`, wFile);
  } else if (peft.share !== undefined) {
    share = peft.share;
    shareGroups = share === 'none' ? undefined : resolveGroups(peft.shareGroups, model.numLayers);
    const broken = brokenTie(found, file.tensors, share, shareGroups ?? []);
    if (broken) throw new CheckpointError(wFile, `tensor "${loraKey(broken.other.path, broken.which)}" differs from layer ${broken.first.layer}'s although ${ADAPTER_CONFIG} records lora_${broken.which} of ${broken.role} as shared by layers ${broken.group.join(', ')} (sharelora.share '${share}')`);
  } else {
    ({ share, shareGroups } = detectShare(found, file.tensors, model.numLayers));
  }
  const adapter = inFile(() => injectForLoad(model, { ...peft.options, share, shareGroups, seed: opts.seed }), cfgFile);
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

/** how PEFT spells a task in adapter_config.json */
const PEFT_TASK = { 'causal-lm': 'CAUSAL_LM', 'seq-cls': 'SEQ_CLS' } as const;

/**
 * A Tied-LoRA folder: PEFT's LoRA layout holds each layer's folded factors
 * (so PEFT computes the same ΔW), sharelora_factors.safetensors the tied A
 * and B once and each layer's u and v. The exact factors are loaded from the
 * latter and checked to fold into the former.
 */
async function loadTied(
  model: Model, dir: string,
  o: ShareLoraOptions & { r: number },
  main: Map<string, RawTensor>, getMain: ReturnType<typeof reader>['get'], usedMain: Set<string>, cfgFile: string, wFile: string,
): Promise<ShareLoraAdapter> {
  const fFile = join(dir, TIED_FACTORS);
  if (!existsSync(fFile)) throw new CheckpointError(fFile, `missing: ${ADAPTER_CONFIG} records a Tied-LoRA adapter, whose exact factors live in this file (the folded copies in ${ADAPTER_WEIGHTS} cannot be split back into A, B, u and v)`);
  const adapter = inFile(() => injectForLoad(model, o), cfgFile);
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
function loadVera(model: Model, dir: string, peft: PeftAdapterConfig, opts: LoadAdapterOptions): ShareLoraAdapter {
  const cfgFile = join(dir, ADAPTER_CONFIG), wFile = join(dir, ADAPTER_WEIGHTS);
  const found = inFile(() => findTargets(model, peft.options.targets!), cfgFile);
  const r = peft.options.r!;
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
  } else if (peft.saveProjection) {
    throw new CheckpointError(wFile, `has no "${fileKey(VERA_A)}" / "${fileKey(VERA_B)}" although ${ADAPTER_CONFIG} says save_projection is true`);
  }
  const adapter = inFile(() => injectForLoad(model, { ...peft.options, seed: opts.seed }), cfgFile);
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
