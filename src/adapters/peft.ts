/**
 * PEFT's on-disk format. A tied tensor is written once per layer, as PEFT's
 * own save_pretrained does, so that PEFT loads our folders; the tie is kept
 * in `sharelora` inside adapter_config.json (PEFT drops unknown keys), and a
 * folder without it is re-tied when every layer's copy is identical.
 */
import { mkdir, rename, writeFile, open } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, serializeSafetensors, type RawTensor, type TensorToWrite } from '../models/safetensors.js';
import { CheckpointError } from '../models/errors.js';
import type { Model } from '../models/types.js';
import { AdapterConfigError, type Share, SHARES } from './config.js';
import { fileKey, injectShareLoRA, PEFT_PREFIX, ShareLoraAdapter } from './sharelora.js';
import { splitPath } from './targets.js';

const CONFIG = 'adapter_config.json';
const WEIGHTS = 'adapter_model.safetensors';

/** The target_modules PEFT needs to find exactly our projections (a regex when a suffix would catch others). */
function peftTargets(adapter: ShareLoraAdapter): string[] | string {
  const roles = [...new Set(adapter.modules.map((m) => m.role))];
  const adapted = new Set(adapter.modules.map((m) => m.path));
  const others = [...adapter.model.linears.keys(), ...[...adapter.model.heads].flatMap(([p, ls]) => [...ls.keys()].map((n) => `${p}.${n}`))].filter((p) => !adapted.has(p));
  const ambiguous = roles.some((r) => others.some((p) => p === r || p.endsWith('.' + r)));
  if (!ambiguous) return roles;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const prefixes = [...new Set(adapter.modules.map((m) => splitPath(m.path)!.prefix))];
  return `(?:${prefixes.map(esc).join('|')})\\.\\d+\\.(?:${roles.map(esc).join('|')})`;
}

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function saveAdapter(adapter: ShareLoraAdapter, dir: string, extra: { baseModel?: string } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const o = adapter.options;
  const tensors = new Map<string, TensorToWrite>();
  const put = (key: string, v: tf.Tensor) => tensors.set(key, { dtype: 'F32', shape: v.shape, data: v.dataSync() as Float32Array });
  for (const m of adapter.modules) {
    put(`${PEFT_PREFIX}${m.path}.lora_A.weight`, m.hook.A);
    put(`${PEFT_PREFIX}${m.path}.lora_B.weight`, m.hook.B);
  }
  for (const [name, v] of adapter.namedParameters()) if (name.includes('.modules_to_save.')) put(fileKey(name), v);
  const config = {
    peft_type: 'LORA',
    task_type: adapter.model.task === 'causal-lm' ? 'CAUSAL_LM' : 'SEQ_CLS',
    base_model_name_or_path: extra.baseModel ?? null,
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    target_modules: peftTargets(adapter),
    fan_in_fan_out: adapter.model.family === 'gpt2',
    bias: 'none',
    modules_to_save: adapter.savedModules.length ? adapter.savedModules : null,
    init_lora_weights: true,
    use_rslora: o.useRslora,
    use_dora: false,
    inference_mode: true,
    rank_pattern: {},
    alpha_pattern: {},
    sharelora: { share: o.share, version: 1 },
  };
  // weights first: a folder whose config exists always has matching weights
  await atomicWrite(join(dir, WEIGHTS), serializeSafetensors(tensors));
  await atomicWrite(join(dir, CONFIG), JSON.stringify(config, null, 2) + '\n');
}

function readJson(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(file, `cannot read adapter config (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(file, 'adapter config is not a JSON object');
  return raw as Record<string, unknown>;
}

function sameValues(a: RawTensor, b: RawTensor): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * Load a PEFT LoRA folder onto a model, restoring ShareLoRA ties.
 * @example const adapter = await loadAdapter(model, 'adapters/sst2-shareA');
 */
export async function loadAdapter(model: Model, dir: string): Promise<ShareLoraAdapter> {
  const cfgFile = join(dir, CONFIG);
  const wFile = join(dir, WEIGHTS);
  if (!existsSync(cfgFile)) throw new CheckpointError(cfgFile, 'missing (expected a PEFT adapter folder)');
  if (!existsSync(wFile)) throw new CheckpointError(wFile, existsSync(join(dir, 'adapter_model.bin')) ? 'missing; adapter_model.bin (pickle) is not supported, re-save with safe_serialization=True' : 'missing');
  const c = readJson(cfgFile);
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw new AdapterConfigError('peft_type', `is ${JSON.stringify(c.peft_type)}, only "LORA" adapters can be loaded`, cfgFile);
  if (c.use_dora === true) throw new AdapterConfigError('use_dora', 'DoRA adapters are not supported', cfgFile);
  if (c.bias !== undefined && c.bias !== 'none') throw new AdapterConfigError('bias', `is ${JSON.stringify(c.bias)}; only "none" is supported`, cfgFile);
  for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
    if (c[k] && typeof c[k] === 'object' && Object.keys(c[k] as object).length) throw new AdapterConfigError(k, 'per-module ranks/alphas are not supported', cfgFile);
  }
  if (!Number.isSafeInteger(c.r) || (c.r as number) < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(c.r)}`, cfgFile);
  if (typeof c.lora_alpha !== 'number') throw new AdapterConfigError('lora_alpha', `must be a number, got ${JSON.stringify(c.lora_alpha)}`, cfgFile);
  const tm = c.target_modules;
  let targets: string[] | RegExp;
  if (typeof tm === 'string') targets = new RegExp(`^(?:${tm})$`);
  else if (Array.isArray(tm) && tm.length && tm.every((t) => typeof t === 'string')) targets = tm as string[];
  else throw new AdapterConfigError('target_modules', `must be a list of module names or a regex string, got ${JSON.stringify(tm)}`, cfgFile);
  const mts = c.modules_to_save;
  if (mts !== null && mts !== undefined && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) throw new AdapterConfigError('modules_to_save', `must be a list of module names or null, got ${JSON.stringify(mts)}`, cfgFile);

  const file = readSafetensors(wFile);
  const r = c.r as number;
  const get = (key: string, shape: number[]): RawTensor => {
    const t = file.tensors.get(key);
    if (!t) throw new CheckpointError(wFile, `tensor "${key}" is missing (adapter made for another model?)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new CheckpointError(wFile, `tensor "${key}" has shape [${t.shape}], expected [${shape}] (adapter made for another model or rank?)`);
    return t;
  };

  // Which matrices are tied: as recorded, else detected from identical per-layer copies.
  const recorded = (c.sharelora as { share?: unknown } | undefined)?.share;
  if (recorded !== undefined && !SHARES.includes(recorded as Share)) throw new AdapterConfigError('sharelora.share', `must be one of ${SHARES.join(', ')}, got ${JSON.stringify(recorded)}`, cfgFile);
  const probe = injectShareLoRA(model, { r, alpha: c.lora_alpha as number, targets, share: 'none', modulesToSave: (mts as string[] | null) ?? [] });
  let share: Share = recorded as Share | undefined ?? 'none';
  try {
    if (recorded === undefined) {
      const byRole = new Map<string, typeof probe.modules>();
      for (const m of probe.modules) byRole.set(m.role, [...(byRole.get(m.role) ?? []), m]);
      const tied = (which: 'A' | 'B') => [...byRole.values()].every((ms) => ms.length > 1 && ms.every((m) => {
        const shape = which === 'A' ? [r, m.linear.inFeatures] : [m.linear.outFeatures, r];
        return sameValues(get(`${PEFT_PREFIX}${ms[0].path}.lora_${which}.weight`, shape), get(`${PEFT_PREFIX}${m.path}.lora_${which}.weight`, shape));
      }));
      const a = tied('A'), b = tied('B');
      share = a && b ? 'AB' : a ? 'A' : b ? 'B' : 'none';
    }
  } finally {
    probe.unload();
  }
  const adapter = injectShareLoRA(model, {
    r, alpha: c.lora_alpha as number, targets, share, dropout: typeof c.lora_dropout === 'number' ? c.lora_dropout : 0,
    modulesToSave: (mts as string[] | null) ?? [], useRslora: c.use_rslora === true,
  });
  try {
    const seen = new Set<tf.Variable>();
    for (const m of adapter.modules) {
      for (const which of ['A', 'B'] as const) {
        const v = which === 'A' ? m.hook.A : m.hook.B;
        const key = `${PEFT_PREFIX}${m.path}.lora_${which}.weight`;
        const t = get(key, v.shape);
        if (seen.has(v)) {
          if (recorded !== undefined && !sameValues(t, { ...t, data: v.dataSync() as Float32Array })) throw new CheckpointError(wFile, `tensor "${key}" differs from the first layer's although the config says lora_${which} is shared`);
          continue;
        }
        seen.add(v);
        tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, t.shape)));
      }
    }
    for (const [name, v] of adapter.namedParameters()) {
      if (!name.includes('.modules_to_save.')) continue;
      const t = get(fileKey(name), v.shape);
      tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, t.shape)));
    }
  } catch (e) {
    adapter.unload();
    throw e;
  }
  return adapter;
}
