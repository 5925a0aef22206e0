/**
 * The embedded models (the causal data/sharelora-gpt2-mini and the 12-layer
 * data/sharelora-gpt2-deep, by scripts/pretrain-causal.ts; the 12-layer masked LM
 * data/sharelora-roberta-deep, by scripts/pretrain-mlm.ts): each must know some English (held-out perplexity,
 * and for the encoder masked accuracy, far from a unigram model's on the same tokens), and be a better starting
 * point for ShareLoRA fine-tuning than the same architecture at random init.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../../src/models/load.js';
import { loadModel } from '../../src/models/index.js';
import { randomModel } from '../../src/models/init.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import { Trainer } from '../../src/train/trainer.js';
import { loadTokenizer } from '../../src/data/load-tokenizer.js';
import { datasets } from '../../src/data/datasets.js';
import { collateClassification } from '../../src/data/collate.js';
import type { Model } from '../../src/models/types.js';
import { ROOT } from '../helpers.js';
import { useBackend } from '../../src/backend/index.js';
import { embeddedModels } from '../../src/models/resolve.js';
import { maskedLmCheck } from './masked-lm-check.js';

describe('embedded model', () => {
  // wasm: a 7M-parameter model is ~36x faster there than on the pure-JS cpu backend
  before(async () => { await useBackend(process.env.SHARELORA_BACKEND || 'wasm'); });

  for (const name of ['sharelora-gpt2-mini', 'sharelora-gpt2-deep']) it(`${name}: held-out perplexity is far below a unigram model on the same tokens`, async () => {
    const dir = join(ROOT, 'data', name);
    const model = loadModelFromDir(dir);
    const buf = readFileSync(join(dir, 'heldout-tokens.bin'));
    const ids = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2).subarray(0, 16 * 128);
    const blocks: number[][] = [];
    for (let i = 0; i + 128 <= ids.length; i += 128) blocks.push(Array.from(ids.subarray(i, i + 128)));
    const l = tf.tidy(() => model.loss(model.forward({ inputIds: blocks }).logits, tf.tensor2d(blocks, [blocks.length, 128], 'int32')));
    const ppl = Math.exp((await l.data())[0]);
    l.dispose();
    // add-one unigram from the pretraining split's counts, scored on the same predicted tokens
    const counts = JSON.parse(readFileSync(join(dir, 'unigram-counts.json'), 'utf8')) as number[];
    const total = counts.reduce((a, b) => a + b, 0) + counts.length;
    let nll = 0, n = 0;
    for (const b of blocks) for (const t of b.slice(1)) { nll -= Math.log((counts[t] + 1) / total); n++; }
    const unigram = Math.exp(nll / n);
    assert.ok(ppl < unigram / 3, `${name}: perplexity ${ppl.toFixed(1)} vs unigram ${unigram.toFixed(1)}`);
    model.dispose();
  });

  // every embedded masked LM (issue 20's encoder, once shipped): its held-out tokens, masked here, against the unigram
  const encoders = embeddedModels().filter((n) => ((JSON.parse(readFileSync(join(ROOT, 'data', n, 'config.json'), 'utf8')).architectures ?? []) as string[]).includes('RobertaForMaskedLM'));
  for (const name of encoders) it(`${name}: held-out masked-token accuracy and perplexity far ahead of a unigram model on the same masks`, () => {
    const r = maskedLmCheck(join(ROOT, 'data', name));
    assert.ok(r.perplexity < r.unigramPerplexity / 3, `${name}: MLM perplexity ${r.perplexity.toFixed(1)} vs unigram ${r.unigramPerplexity.toFixed(1)} over ${r.masked} masks`);
    assert.ok(r.accuracy > 3 * r.unigramAccuracy, `${name}: masked accuracy ${r.accuracy.toFixed(3)} vs the unigram's top token ${r.unigramAccuracy.toFixed(3)}`);
  });

  // the causal default's test model, and issue 20's encoder loaded from its embedded name in one line (RoBERTa's
  // <s> pooler head on top; its q, v are `query`, `value`)
  for (const name of ['sharelora-gpt2-mini', 'sharelora-roberta-deep']) it(`${name}: ShareA fine-tuning from it beats the same model from random initialisation (WordNet glosses: person vs artifact)`, async (t) => {
    const dir = join(ROOT, 'data', name);
    const tok = loadTokenizer(dir);
    // two large noun supersenses: telling them apart needs word meaning, which pretraining supplies
    const load = async (split: 'train' | 'validation', limit: number) => {
      const { table, task } = await datasets.wordnetSupersense({ split, pos: 'noun', seed: 7 });
      const names = task.labelNames!;
      const [person, artifact] = [names.indexOf('person'), names.indexOf('artifact')];
      const texts = table.array('text') as string[], labels = table.array(task.labelField!) as number[];
      const out = { texts: [] as string[], labels: [] as number[] };
      for (let i = 0; i < texts.length && out.texts.length < limit; i++) {
        if (labels[i] === person || labels[i] === artifact) { out.texts.push(texts[i]); out.labels.push(labels[i] === person ? 1 : 0); }
      }
      return out;
    };
    const train = await load('train', 128), val = await load('validation', 64);
    const batches = (d: { texts: string[]; labels: number[] }, bs: number) => Array.from({ length: Math.ceil(d.texts.length / bs) }, (_, i) =>
      collateClassification(tok, d.texts.slice(i * bs, (i + 1) * bs), d.labels.slice(i * bs, (i + 1) * bs), { maxLength: 24 }));
    const finetune = async (model: Model) => {
      const ad = injectShareLoRA(model, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'A', seed: 1 });
      const tr = new Trainer(model, ad, { lr: 2e-3, seed: 1 });
      await tr.fit({ train: batches(train, 16), epochs: 3 });
      const r = await tr.evaluate(batches(val, 32));
      tr.dispose(); ad.unload(); model.dispose();
      return r;
    };
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const pre = await finetune(await loadModel(name, { task: 'seq-cls', numLabels: 2, seed: 1 }));
    const rnd = await finetune(randomModel({ ...config, num_labels: 2 }, { seed: 1, task: 'seq-cls' }));
    t.diagnostic(`${name}: eval loss / accuracy pretrained ${pre.loss.toFixed(3)} / ${pre.metrics.accuracy.toFixed(3)}, random init ${rnd.loss.toFixed(3)} / ${rnd.metrics.accuracy.toFixed(3)}`);
    assert.ok(pre.loss < rnd.loss, `${name} eval loss: pretrained ${pre.loss} vs random init ${rnd.loss}`);
    assert.ok(pre.metrics.accuracy > rnd.metrics.accuracy, `${name} accuracy: pretrained ${pre.metrics.accuracy} vs random init ${rnd.metrics.accuracy}`);
  });
});
