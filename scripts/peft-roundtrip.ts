/**
 * Does PEFT itself load our adapter folders? This writes ShareLoRA adapters
 * (non-zero B, every variant) for the three fixture models plus the logits we
 * compute with them; scripts/check_peft_load.py (run where torch + peft exist,
 * e.g. the GPU machine) loads each folder with PeftModel.from_pretrained and
 * compares its logits with ours.
 *   node dist/scripts/peft-roundtrip.js OUT
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useBackend } from '../src/backend/index.js';
import { loadModelFromDir } from '../src/models/load.js';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../src/models/safetensors.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { FIXTURES } from '../test/helpers.js';

const out = process.argv[2] ?? '.peftcheck';
await useBackend('cpu');
const targets: Record<string, string[]> = { gpt2: ['c_attn'], roberta: ['query', 'value'], llama: ['q_proj', 'v_proj', 'down_proj'] };
const manifest: Record<string, unknown> = {};
for (const family of ['gpt2', 'roberta', 'llama']) {
  const exp = readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
  const ids = exp.get('input_ids')!, mask = exp.get('attention_mask')!;
  const [B, T] = ids.shape;
  const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
  const modelDir = join(FIXTURES, family, 'model');
  const model = loadModelFromDir(modelDir);
  for (const share of ['none', 'A', 'B', 'AB'] as const) {
    const name = `${family}-share${share}`;
    const adapter = injectShareLoRA(model, { r: 4, alpha: 8, targets: targets[family], share, seed: 5, init: 'random' });
    await adapter.save(join(out, name), { baseModel: modelDir });
    const { logits } = model.forward({ inputIds: rows(ids), attentionMask: rows(mask) });
    const tensors = new Map<string, TensorToWrite>([['logits', { dtype: 'F32', shape: logits.shape, data: await logits.data() as Float32Array }],
      ['input_ids', { dtype: 'I32', shape: ids.shape, data: ids.data as Int32Array }], ['attention_mask', { dtype: 'I32', shape: mask.shape, data: mask.data as Int32Array }]]);
    writeFileSync(join(out, name, 'ours.safetensors'), serializeSafetensors(tensors));
    manifest[name] = { family, share, model: modelDir, trainable: adapter.trainableParameterCount() };
    logits.dispose();
    adapter.unload();
  }
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
console.log(`wrote ${Object.keys(manifest).length} adapters to ${out}`);
