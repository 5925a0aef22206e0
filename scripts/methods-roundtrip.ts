/**
 * Does PEFT itself load our VeRA, LoRA-FA and Tied-LoRA folders? Like
 * scripts/peft-roundtrip.ts (and read by the same scripts/check_peft_load.py,
 * which loads each folder with PeftModel.from_pretrained whatever its
 * peft_type and compares logits): VeRA in PEFT's VERA layout, LoRA-FA and
 * Tied-LoRA in its LoRA layout (Tied-LoRA's per-layer vectors folded in),
 * each with every factor non-zero, for the three fixture models.
 *   node dist/scripts/methods-roundtrip.js OUT && python3 scripts/check_peft_load.py OUT
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { loadModelFromDir } from '../src/models/load.js';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../src/models/safetensors.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import type { ShareLoraOptions } from '../src/adapters/config.js';
import { FIXTURES } from '../test/helpers.js';

const out = process.argv[2] ?? '.peftcheck-methods';
await useBackend('cpu');
// mixed shapes, so VeRA's shared projections are sliced
const targets: Record<string, string[]> = { gpt2: ['c_attn', 'c_fc'], roberta: ['query', 'value', 'intermediate.dense'], llama: ['q_proj', 'v_proj', 'down_proj'] };
const cases: Record<string, ShareLoraOptions> = {
  vera: { method: 'vera', r: 16, projectionSeed: 77 },
  'lora-fa': { method: 'lora-fa', r: 4, alpha: 8, share: 'A' },
  'tied-lora': { method: 'tied-lora', r: 4, alpha: 8 },
  'tied-lora-VbUa': { method: 'tied-lora', r: 4, alpha: 8, tiedTrain: 'VbUa', shareGroups: 2 },
};
const manifest: Record<string, unknown> = {};
for (const family of ['gpt2', 'roberta', 'llama']) {
  const exp = readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
  const ids = exp.get('input_ids')!, mask = exp.get('attention_mask')!;
  const [B, T] = ids.shape;
  const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
  const modelDir = join(FIXTURES, family, 'model');
  const model = loadModelFromDir(modelDir);
  for (const [kind, o] of Object.entries(cases)) {
    const name = `${family}-${kind}`;
    const adapter = injectShareLoRA(model, { ...o, targets: targets[family], seed: 5, init: 'random' });
    // every vector away from its initial constant, so that PEFT must apply each one to agree
    let i = 0;
    for (const [n, v] of adapter.namedParameters()) {
      if (/vera_lambda|lora_[uv]\./.test(n)) tf.tidy(() => v.assign(tf.add(0.8, tf.mul(0.4, tf.sin(tf.add(tf.range(0, v.size), ++i))))));
    }
    await adapter.save(join(out, name), { baseModel: modelDir });
    const { logits } = model.forward({ inputIds: rows(ids), attentionMask: rows(mask) });
    const tensors = new Map<string, TensorToWrite>([['logits', { dtype: 'F32', shape: logits.shape, data: await logits.data() as Float32Array }],
      ['input_ids', { dtype: 'I32', shape: ids.shape, data: ids.data as Int32Array }], ['attention_mask', { dtype: 'I32', shape: mask.shape, data: mask.data as Int32Array }]]);
    writeFileSync(join(out, name, 'ours.safetensors'), serializeSafetensors(tensors));
    manifest[name] = { family, method: o.method, model: modelDir, trainable: adapter.trainableParameterCount() };
    logits.dispose();
    adapter.unload();
  }
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
console.log(`wrote ${Object.keys(manifest).length} adapters to ${out}`);
