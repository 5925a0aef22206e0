/**
 * What scripts/peft-roundtrip.ts and scripts/methods-roundtrip.ts share: for
 * each fixture model and case, the adapter (every factor random) saved as a
 * PEFT folder, with the logits we compute with it and the batch they come
 * from (ours.safetensors), and a manifest; scripts/check_peft_load.py loads
 * each folder with PEFT itself and compares the logits.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useBackend } from '../src/backend/index.js';
import { loadModelFromDir } from '../src/models/load.js';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../src/models/safetensors.js';
import { injectShareLoRA, type ShareLoraAdapter } from '../src/adapters/sharelora.js';
import type { ShareLoraOptions } from '../src/adapters/config.js';
import { FIXTURES } from '../test/helpers.js';

export interface RoundtripCase {
  /** the folder is `<family>-<name>` */
  name: string;
  /** injectShareLoRA's options but targets, seed and init (the family's targets, seed 5, random init) */
  options: ShareLoraOptions;
  /** what the manifest records of the case besides family, model and trainable count */
  manifest: Record<string, unknown>;
  /** changes the adapter's weights before it is saved */
  prepare?: (adapter: ShareLoraAdapter) => void;
}

/** Writes every case on every family to `out`; `targets` per family (gpt2, roberta, llama). */
export async function writeRoundtrip(out: string, targets: Record<string, string[]>, cases: readonly RoundtripCase[]): Promise<void> {
  await useBackend('cpu');
  const manifest: Record<string, unknown> = {};
  for (const family of ['gpt2', 'roberta', 'llama']) {
    const exp = readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
    const ids = exp.get('input_ids')!, mask = exp.get('attention_mask')!;
    const [B, T] = ids.shape;
    const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
    const modelDir = join(FIXTURES, family, 'model');
    const model = loadModelFromDir(modelDir);
    for (const c of cases) {
      const name = `${family}-${c.name}`;
      const adapter = injectShareLoRA(model, { ...c.options, targets: targets[family], seed: 5, init: 'random' });
      c.prepare?.(adapter);
      await adapter.save(join(out, name), { baseModel: modelDir });
      const { logits } = model.forward({ inputIds: rows(ids), attentionMask: rows(mask) });
      const tensors = new Map<string, TensorToWrite>([['logits', { dtype: 'F32', shape: logits.shape, data: await logits.data() as Float32Array }],
        ['input_ids', { dtype: 'I32', shape: ids.shape, data: ids.data as Int32Array }], ['attention_mask', { dtype: 'I32', shape: mask.shape, data: mask.data as Int32Array }]]);
      writeFileSync(join(out, name, 'ours.safetensors'), serializeSafetensors(tensors));
      manifest[name] = { family, ...c.manifest, model: modelDir, trainable: adapter.trainableParameterCount() };
      logits.dispose();
      adapter.unload();
    }
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
  console.log(`wrote ${Object.keys(manifest).length} adapters to ${out}`);
}
