/**
 * Does PEFT itself load our VeRA, LoRA-FA and Tied-LoRA folders? Like
 * scripts/peft-roundtrip.ts (and read by the same scripts/check_peft_load.py,
 * which loads each folder with PeftModel.from_pretrained whatever its
 * peft_type and compares logits): VeRA in PEFT's VERA layout, LoRA-FA and
 * Tied-LoRA in its LoRA layout (Tied-LoRA's per-layer vectors folded in),
 * each with every factor non-zero, for the three fixture models.
 *   node dist/scripts/methods-roundtrip.js OUT && python3 scripts/check_peft_load.py OUT
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ShareLoraOptions } from '../src/adapters/config.js';
import { writeRoundtrip } from './roundtrip.js';

// mixed shapes, so VeRA's shared projections are sliced
const targets: Record<string, string[]> = { gpt2: ['c_attn', 'c_fc'], roberta: ['query', 'value', 'intermediate.dense'], llama: ['q_proj', 'v_proj', 'down_proj'] };
const cases: Record<string, ShareLoraOptions> = {
  vera: { method: 'vera', r: 16, projectionSeed: 77 },
  'lora-fa': { method: 'lora-fa', r: 4, alpha: 8, share: 'A' },
  'tied-lora': { method: 'tied-lora', r: 4, alpha: 8 },
  'tied-lora-VbUa': { method: 'tied-lora', r: 4, alpha: 8, tiedTrain: 'VbUa', shareGroups: 2 },
};
await writeRoundtrip(process.argv[2] ?? '.peftcheck-methods', targets, Object.entries(cases).map(([kind, o]) => ({
  name: kind, options: o, manifest: { method: o.method },
  // every vector away from its initial constant, so that PEFT must apply each one to agree
  prepare: (adapter) => {
    let i = 0;
    for (const [n, v] of adapter.namedParameters()) {
      if (/vera_lambda|lora_[uv]\./.test(n)) tf.tidy(() => v.assign(tf.add(0.8, tf.mul(0.4, tf.sin(tf.add(tf.range(0, v.size), ++i))))));
    }
  },
})));
