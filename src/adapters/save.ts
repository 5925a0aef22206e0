/**
 * Writing PEFT folders (peft.ts reads them). A tied tensor is written once
 * per layer, as PEFT's own save_pretrained does, so that PEFT loads our
 * folders; the tie (share and share_groups) is kept in `sharelora` inside
 * adapter_config.json (PEFT drops unknown keys), with the method when it is
 * not plain LoRA: LoRA-FA is PEFT's LoRA layout, Tied-LoRA too with its
 * vectors folded in (exact factors beside it), VeRA PEFT's VERA layout. This file needs the adapter
 * only as a type, so that adapter.save() can call it without sharelora.ts
 * and peft.ts importing each other.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { serializeSafetensors, type TensorToWrite } from '../models/safetensors.js';
import { atomicWrite } from '../util/fs.js';
import { AdapterUnloadedError } from './errors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fileKey, loraKey, TIED_FACTORS, VERA_A, VERA_B } from './names.js';
import type { ShareLoraAdapter } from './sharelora.js';
import { splitPath } from './targets.js';

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

/**
 * Save as a PEFT folder (adapter_config.json + adapter_model.safetensors),
 * replacing each file atomically; adapter.save(dir) is the same.
 * @example await saveAdapter(adapter, 'adapters/sst2-shareA', { baseModel: 'roberta-base' });
 */
export async function saveAdapter(adapter: ShareLoraAdapter, dir: string, extra: { baseModel?: string } = {}): Promise<void> {
  if (adapter.isUnloaded) throw new AdapterUnloadedError(`save to ${dir}`);
  await mkdir(dir, { recursive: true });
  const o = adapter.options;
  const tensors = new Map<string, TensorToWrite>();
  const f32 = async (v: tf.Tensor): Promise<TensorToWrite> => ({ dtype: 'F32', shape: v.shape, data: await v.data() as Float32Array });
  const put = async (key: string, v: tf.Tensor) => tensors.set(key, await f32(v));
  let factors: Map<string, TensorToWrite> | undefined;
  if (o.method === 'vera') {
    // PEFT's layout with save_projection=true: the shared projections once, each projection's two vectors
    await put(fileKey(VERA_A), adapter.frozenParameters().get(VERA_A)!);
    await put(fileKey(VERA_B), adapter.frozenParameters().get(VERA_B)!);
    for (const [name, v] of adapter.namedParameters()) if (!name.includes('.modules_to_save.')) await put(fileKey(name), v);
  } else {
    for (const m of adapter.modules) {
      // Tied-LoRA's per-layer u and v are folded in (PEFT then computes the same ΔW); the exact factors go beside them
      const [A, B] = tf.tidy(() => m.hook.factors());
      await put(loraKey(m.path, 'A'), A);
      await put(loraKey(m.path, 'B'), B);
      if (A !== (m.hook.A as tf.Tensor)) A.dispose();
      if (B !== (m.hook.B as tf.Tensor)) B.dispose();
    }
    if (o.method === 'tied-lora') {
      factors = new Map();
      for (const [name, v] of [...adapter.namedParameters(), ...adapter.frozenParameters()]) if (!name.includes('.modules_to_save.')) factors.set(fileKey(name), await f32(v));
    }
  }
  for (const [name, v] of adapter.namedParameters()) if (name.includes('.modules_to_save.')) await put(fileKey(name), v);
  const record = o.method === 'lora' ? {} : o.method === 'lora-fa' ? { method: o.method, frozen: ['A'] }
    : o.method === 'tied-lora' ? { method: o.method, tied_train: o.tiedTrain, factors: TIED_FACTORS } : { method: o.method };
  const common = {
    // PEFT has no masked-LM task type; it leaves task_type null for such models
    task_type: adapter.model.task === 'causal-lm' ? 'CAUSAL_LM' : adapter.model.task === 'seq-cls' ? 'SEQ_CLS' : null,
    base_model_name_or_path: extra.baseModel ?? null,
    r: o.r,
    target_modules: peftTargets(adapter),
    fan_in_fan_out: adapter.model.family === 'gpt2',
    bias: 'none',
    modules_to_save: adapter.savedModules.length ? adapter.savedModules : null,
    inference_mode: true,
  };
  const config = o.method === 'vera' ? {
    peft_type: 'VERA', ...common,
    projection_prng_key: o.projectionSeed,
    save_projection: true,
    vera_dropout: o.dropout,
    d_initial: o.dInitial,
    init_weights: o.init !== 'random',
    layers_to_transform: null,
    layers_pattern: null,
    sharelora: { ...record, version: 1 },
  } : {
    peft_type: 'LORA', ...common,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    init_lora_weights: true,
    use_rslora: o.useRslora,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
    sharelora: o.share === 'none' ? { share: o.share, ...record, version: 1 } : { share: o.share, share_groups: adapter.shareGroups, ...record, version: 1 },
  };
  // weights first: a folder whose config exists always has matching weights
  if (factors) await atomicWrite(join(dir, TIED_FACTORS), serializeSafetensors(factors));
  await atomicWrite(join(dir, ADAPTER_WEIGHTS), serializeSafetensors(tensors));
  await atomicWrite(join(dir, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
}
