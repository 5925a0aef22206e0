/**
 * Does PEFT itself load our adapter folders? This writes ShareLoRA adapters
 * (non-zero B, every variant) for the three fixture models plus the logits we
 * compute with them; scripts/check_peft_load.py (run where torch + peft exist,
 * e.g. the GPU machine) loads each folder with PeftModel.from_pretrained and
 * compares its logits with ours.
 *   node dist/scripts/peft-roundtrip.js OUT
 */
import { writeRoundtrip } from './roundtrip.js';

const targets: Record<string, string[]> = { gpt2: ['c_attn'], roberta: ['query', 'value'], llama: ['q_proj', 'v_proj', 'down_proj'] };
await writeRoundtrip(process.argv[2] ?? '.peftcheck', targets, (['none', 'A', 'B', 'AB'] as const).map((share) => ({
  name: `share${share}`, options: { r: 4, alpha: 8, share }, manifest: { share },
})));
