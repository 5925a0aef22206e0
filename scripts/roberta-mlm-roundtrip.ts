/**
 * Does transformers' RobertaForMaskedLM load the folders we save, and compute
 * our logits? This writes a RoBERTa masked LM with every weight random (norms
 * and biases too, so a misnamed or dropped tensor shows), in float32 and
 * float16, with our RoBERTa BPE tokenizer, plus inputs (with <mask> and
 * padding), labels and the logits and loss we compute. scripts/check_roberta_mlm.py
 * (run where torch + transformers exist: the GPU machine) loads each folder
 * with RobertaForMaskedLM.from_pretrained and compares.
 *   node dist/scripts/roberta-mlm-roundtrip.js OUT [MODEL_DIR...]   (extra folders, e.g. a pretrained data/sharelora-roberta-mini, are copied into OUT and checked too)
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { randomModel } from '../src/models/init.js';
import { loadModelFromDir } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { serializeSafetensors, type TensorToWrite } from '../src/models/safetensors.js';
import type { Model } from '../src/models/types.js';
import { IGNORE_INDEX } from '../src/backend/labels.js';
import { loadTokenizer, saveTokenizer } from '../src/data/load-tokenizer.js';
import { padRows } from '../src/data/collate.js';
import { Rng } from '../src/util/rng.js';
import { mlmTokenizer } from './pretrain/data.js';

const [out = '.mlmcheck', ...extra] = process.argv.slice(2);
await useBackend('cpu');
const SENTENCES = ['The whale rose from the <mask> and spouted.', 'Congress shall make no <mask> respecting an establishment of religion.', 'A <mask> is a domesticated carnivorous mammal.'];

async function write(name: string, dir: string, model: Model): Promise<void> {
  const tok = loadTokenizer(dir);
  const rows = SENTENCES.map((s) => tok.encode(s));
  const { inputIds, attentionMask } = padRows(rows, tok.padId);
  // label the masked positions with a plausible token and one ordinary position, -100 elsewhere (padding included)
  const labels = inputIds.map((r, b) => r.map((id, t) => (id === tok.tokenToId('<mask>') ? tok.encode(' sea', { addSpecialTokens: false })[0]! : t === 2 && attentionMask[b]![t] ? id : IGNORE_INDEX)));
  const { logits } = model.forward({ inputIds, attentionMask });
  const loss = model.loss(logits, tf.tensor2d(labels, undefined, 'int32'));
  const [B, T] = [inputIds.length, inputIds[0]!.length];
  const i32 = (a: number[][]): TensorToWrite => ({ dtype: 'I32', shape: [B, T], data: Int32Array.from(a.flat()) });
  const tensors = new Map<string, TensorToWrite>([
    ['input_ids', i32(inputIds)], ['attention_mask', i32(attentionMask)], ['labels', i32(labels)],
    ['logits', { dtype: 'F32', shape: logits.shape, data: await logits.data() as Float32Array }],
    ['loss', { dtype: 'F32', shape: [1], data: await loss.data() as Float32Array }],
  ]);
  writeFileSync(join(dir, 'ours.safetensors'), serializeSafetensors(tensors));
  manifest[name] = { dir, sentences: SENTENCES, vocab: model.config.vocabSize, parameters: model.baseParameterCount() };
  tf.dispose([logits, loss]);
}

const manifest: Record<string, unknown> = {};
mkdirSync(out, { recursive: true });
const config = {
  model_type: 'roberta', architectures: ['RobertaForMaskedLM'], vocab_size: 8261, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4,
  intermediate_size: 128, hidden_act: 'gelu', max_position_embeddings: 66, type_vocab_size: 1, layer_norm_eps: 1e-5, initializer_range: 0.05,
  pad_token_id: 1, bos_token_id: 0, eos_token_id: 2, tie_word_embeddings: true,
};
const model = randomModel(config, { seed: 11, task: 'masked-lm' });
const rng = new Rng(12);
for (const [name, ref] of model.weights()) {
  if (!/(bias|LayerNorm\.weight|layer_norm\.weight)$/.test(name)) continue;
  const t = ref.get();
  const base = name.endsWith('.weight') ? 1 : 0;
  ref.set(tf.tensor(rng.uniform(t.size, base - 0.5, base + 0.5), t.shape));
  t.dispose();
}
for (const dtype of ['F32', 'F16'] as const) {
  const dir = join(out, `random-${dtype.toLowerCase()}`);
  await saveModel(model, dir, { dtype });
  saveTokenizer(dir, mlmTokenizer(8000, 64));
  // the F16 folder is compared with what we compute from the F16 weights, as transformers will see them
  await write(`random-${dtype.toLowerCase()}`, dir, dtype === 'F32' ? model : loadModelFromDir(dir));
}
for (const src of extra) {
  // a copy, so the checked folder (e.g. one in data/) gets no ours.safetensors
  const dir = join(out, `extra-${basename(src)}`);
  cpSync(src, dir, { recursive: true });
  await write(`extra-${basename(src)}`, dir, loadModelFromDir(dir, { task: 'masked-lm' }));
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
console.log(`wrote ${Object.keys(manifest).length} masked-LM folders to ${out}: ${Object.keys(manifest).join(', ')}`);
