/**
 * Writing PEFT folders (peft.ts reads them). A tied tensor is written once
 * per layer, as PEFT's own save_pretrained does, so that PEFT loads our
 * folders; the tie (share and share_groups) is kept in `sharelora` inside
 * adapter_config.json (PEFT drops unknown keys). This file needs the adapter
 * only as a type, so that adapter.save() can call it without sharelora.ts
 * and peft.ts importing each other.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { serializeSafetensors, type TensorToWrite } from '../models/safetensors.js';
import { atomicWrite } from '../util/fs.js';
import { AdapterUnloadedError } from './errors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fileKey, loraKey } from './names.js';
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
  const put = async (key: string, v: tf.Tensor) => tensors.set(key, { dtype: 'F32', shape: v.shape, data: await v.data() as Float32Array });
  for (const m of adapter.modules) {
    await put(loraKey(m.path, 'A'), m.hook.A);
    await put(loraKey(m.path, 'B'), m.hook.B);
  }
  for (const [name, v] of adapter.namedParameters()) if (name.includes('.modules_to_save.')) await put(fileKey(name), v);
  const config = {
    peft_type: 'LORA',
    // PEFT has no masked-LM task type; it leaves task_type null for such models
    task_type: adapter.model.task === 'causal-lm' ? 'CAUSAL_LM' : adapter.model.task === 'seq-cls' ? 'SEQ_CLS' : null,
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
    sharelora: o.share === 'none' ? { share: o.share, version: 1 } : { share: o.share, share_groups: adapter.shareGroups, version: 1 },
  };
  // weights first: a folder whose config exists always has matching weights
  await atomicWrite(join(dir, ADAPTER_WEIGHTS), serializeSafetensors(tensors));
  await atomicWrite(join(dir, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
}
