import { mkdir } from 'node:fs/promises';
import { atomicWrite } from '../util/fs.js';
import { join } from 'node:path';
import { serializeSafetensors, type TensorToWrite } from './safetensors.js';
import type { Model } from './types.js';

const ARCH: Record<string, Record<string, string>> = {
  gpt2: { 'causal-lm': 'GPT2LMHeadModel', 'seq-cls': 'GPT2ForSequenceClassification' },
  roberta: { 'seq-cls': 'RobertaForSequenceClassification', 'masked-lm': 'RobertaForMaskedLM' },
  llama: { 'causal-lm': 'LlamaForCausalLM', 'seq-cls': 'LlamaForSequenceClassification' },
};


/**
 * Write the model as a Hugging Face folder (config.json + model.safetensors)
 * that transformers' from_pretrained and loadModel read. F16 halves the size.
 */
export async function saveModel(model: Model, dir: string, opts: { dtype?: 'F32' | 'F16' } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, ref] of model.weights()) {
    const t = ref.get();
    tensors.set(name, { dtype: opts.dtype ?? 'F32', shape: t.shape, data: await t.data() as Float32Array });
  }
  const arch = ARCH[model.family][model.task];
  if (!arch) throw new Error(`saveModel: a ${model.family} model cannot be saved as task "${model.task}"`);
  const config: Record<string, unknown> = { ...model.config.raw, architectures: [arch], dtype: opts.dtype === 'F16' ? 'float16' : 'float32' };
  // the decoder is not written when tied: transformers re-ties it to the word embeddings on load, as it does for its own checkpoints
  if (model.task === 'masked-lm') config.tie_word_embeddings = !model.weights().has('lm_head.decoder.weight');
  if (model.task === 'seq-cls') Object.assign(config, { num_labels: model.config.numLabels, id2label: Object.fromEntries(Array.from({ length: model.config.numLabels }, (_, i) => [String(i), `LABEL_${i}`])), label2id: Object.fromEntries(Array.from({ length: model.config.numLabels }, (_, i) => [`LABEL_${i}`, i])) });
  await atomicWrite(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
  await atomicWrite(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}
