/**
 * Ground truth: Hugging Face transformers + PEFT (PyTorch, fp32) computed
 * these logits, losses, gradients and AdamW curves (test/fixtures/hf-reference,
 * copied from ../shared/fixtures). Only positions with attention_mask 1 count.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { loadAdapter } from '../src/adapters/peft.js';
import { lossAndGrads } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import type { Model } from '../src/models/types.js';
import { expected, FIXTURES, relErr, testBackend } from './helpers.js';

const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, { cases: Record<string, { trainable_params: number }> }>;

for (const family of ['gpt2', 'roberta', 'llama']) {
  describe(`${family} matches HF + PEFT`, () => {
    let model: Model;
    let tol = { logits: 1e-5, grads: 1e-4, curve: 1e-4 };
    const exp = expected(family);
    const ids = exp.get('input_ids')!;
    const mask = exp.get('attention_mask')!;
    const labels = exp.get('labels')!;
    const [B, T] = ids.shape;
    const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
    const batch = () => ({
      inputIds: rows(ids), attentionMask: rows(mask),
      labels: family === 'roberta' ? Array.from(labels.data) : rows(labels),
    });
    // causal LM logits are [B,T,V]: keep positions whose mask is 1
    const keepLogits = (i: number) => family === 'roberta' || mask.data[Math.floor(i / (exp.get('base_logits')!.shape[2]))] === 1;

    before(async () => {
      const backend = await testBackend();
      if (backend !== 'cpu' && backend !== 'wasm') tol = { logits: 1e-3, grads: 1e-3, curve: 1e-3 };
      model = loadModelFromDir(join(FIXTURES, family, 'model'));
    });

    it('base logits', async () => {
      const { logits } = model.forward(batch());
      const err = relErr(await logits.data(), exp.get('base_logits')!.data, keepLogits);
      logits.dispose();
      assert.ok(err < tol.logits, `base logits rel err ${err}`);
    });

    for (const [name, info] of Object.entries(manifest[family].cases)) {
      it(`${name}: logits, loss, every gradient, trainable count, 10-step AdamW curve`, async () => {
        const adapter = await loadAdapter(model, join(FIXTURES, family, name));
        try {
          assert.equal(adapter.trainableParameterCount(), info.trainable_params);
          const { logits } = model.forward(batch());
          const errL = relErr(await logits.data(), exp.get(`${name}.logits`)!.data, keepLogits);
          assert.ok(errL < tol.logits, `${name} logits rel err ${errL}`);
          const loss0 = model.loss(logits, family === 'roberta' ? tf.tensor1d(Array.from(labels.data), 'int32') : tf.tensor2d(Array.from(labels.data), [B, T], 'int32'));
          const errLoss = relErr(await loss0.data(), exp.get(`${name}.loss`)!.data);
          assert.ok(errLoss < tol.logits, `${name} loss rel err ${errLoss}`);
          tf.dispose([logits, loss0]);

          const { loss, grads } = await lossAndGrads(model, adapter, batch());
          assert.ok(Math.abs(loss - exp.get(`${name}.loss`)!.data[0]) / Math.abs(exp.get(`${name}.loss`)!.data[0]) < tol.logits);
          const want = [...exp.keys()].filter((k) => k.startsWith(`${name}.grad.`)).map((k) => k.slice(`${name}.grad.`.length)).sort();
          assert.deepEqual([...grads.keys()].sort(), want, 'gradient names (a tied tensor once, under layer 0)');
          for (const k of want) {
            const g = grads.get(k)!;
            const e = exp.get(`${name}.grad.${k}`)!;
            assert.deepEqual(g.shape, e.shape, k);
            const err = relErr(await g.data(), e.data);
            assert.ok(err < tol.grads, `${name} grad ${k} rel err ${err}`);
          }
          tf.dispose([...grads.values()]);

          const trainer = new Trainer(model, adapter, { lr: 1e-2 });
          const curve = [] as number[];
          for (let i = 0; i < 10; i++) curve.push(await trainer.step(batch()));
          const errC = relErr(curve, exp.get(`${name}.train_losses`)!.data);
          assert.ok(errC < tol.curve, `${name} AdamW curve rel err ${errC}: ${curve.map((x) => x.toFixed(5))} vs ${Array.from(exp.get(`${name}.train_losses`)!.data).map((x) => x.toFixed(5))}`);
          trainer.dispose();
        } finally {
          adapter.unload();
        }
      });
    }
  });
}
