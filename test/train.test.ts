import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { generate } from '../src/models/generate.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { lossAndGrads } from '../src/train/loss.js';
import { lrMultiplier } from '../src/train/schedule.js';
import { NonFiniteError, Trainer } from '../src/train/trainer.js';
import { requestStop, TrainingInterrupted } from '../src/train/stop.js';
import type { Model } from '../src/models/types.js';
import { FIXTURES, relErr, testBackend } from './helpers.js';

const rows = [[0, 17, 99, 3, 250, 11, 7, 42], [0, 300, 21, 64, 2, 9, 77, 5], [0, 4, 8, 15, 16, 23, 42, 2], [0, 9, 9, 9, 120, 121, 122, 2]];
const cls = (idx: number[]) => ({ inputIds: idx.map((i) => rows[i]), attentionMask: idx.map(() => rows[0].map(() => 1)), labels: idx.map((i) => i % 3) });

describe('Trainer', () => {
  let m: Model;
  before(async () => {
    await testBackend();
    m = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  });

  it("schedules follow HF's get_linear/cosine_schedule_with_warmup", async () => {
    assert.equal(lrMultiplier('linear', 0, 10, 100), 0);
    assert.equal(lrMultiplier('linear', 5, 10, 100), 0.5);
    assert.equal(lrMultiplier('linear', 10, 10, 100), 1);
    assert.equal(lrMultiplier('linear', 55, 10, 100), 0.5);
    assert.equal(lrMultiplier('linear', 100, 10, 100), 0);
    assert.ok(Math.abs(lrMultiplier('cosine', 55, 10, 100) - 0.5) < 1e-12);
    assert.equal(lrMultiplier('constant', 500, 10, 100), 1);
  });

  it('gradient accumulation over two half-batches equals one full batch', async () => {
    const run = async (k: number) => {
      const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'v'], share: 'A', seed: 1, init: 'random' });
      const tr = new Trainer(m, ad, { lr: 1e-2, gradAccumulation: k });
      if (k === 1) await tr.step(cls([0, 1, 2, 3]));
      else { await tr.step(cls([0, 1])); await tr.step(cls([2, 3])); }
      // async reads: webgpu in Node has no synchronous readback
      const vals = (await Promise.all([...ad.namedParameters().values()].map(async (v) => Array.from(await v.data())))).flat();
      tr.dispose(); ad.unload();
      return vals;
    };
    const e = relErr(await run(2), await run(1));
    // webgpu's fused kernels sum in another order; Adam's first step (≈ lr · sign(g)) amplifies that where g ≈ 0
    const tol = tf.getBackend() === 'webgpu' ? 1e-4 : 1e-5;
    assert.ok(e < tol, `rel err ${e}`);
  });

  it('clips the global gradient norm', async () => {
    const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'v'], init: 'random' });
    const tr = new Trainer(m, ad, { lr: 1e-3, maxGradNorm: 1e-3 });
    await tr.step(cls([0, 1]));
    assert.ok(tr.records[0].gradNorm > 1e-3, 'norm is recorded before clipping');
    tr.dispose(); ad.unload();
  });

  it('a NaN loss stops with the step named, and nothing is updated', async () => {
    const ad = injectShareLoRA(m, { r: 4, targets: ['q'], init: 'random' });
    const tr = new Trainer(m, ad, { lr: 1e-2 });
    await tr.step(cls([0]));
    const [name, A] = [...ad.namedParameters()][0];
    const before = Array.from(await ad.namedParameters().get(name)!.data());
    const poisoned = tf.fill(A.shape, NaN);
    const keep = tf.clone(A);
    A.assign(poisoned);
    await assert.rejects(tr.step(cls([0])), (e: Error) => e instanceof NonFiniteError && /step 2/.test(e.message));
    A.assign(keep);
    assert.deepEqual(Array.from(await A.data()), before);
    tf.dispose([poisoned, keep]);
    tr.dispose(); ad.unload();
  });

  it('fit() trains, evaluates, keeps a history table, and stops between steps when asked', async () => {
    const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'v'], share: 'A' });
    const tr = new Trainer(m, ad, { lr: 3e-2, schedule: 'linear', warmupRatio: 0.1 });
    const train = [cls([0, 1]), cls([2, 3])];
    const hist = await tr.fit({ train, epochs: 15, eval: [cls([0, 1, 2, 3])], evalEvery: 10 });
    assert.equal(hist.numRows(), 30);
    assert.deepEqual(hist.columnNames().slice(0, 4), ['step', 'epoch', 'loss', 'lr']);
    const losses = hist.array('loss') as number[];
    assert.ok(losses.slice(-2).reduce((a, b) => a + b) < losses.slice(0, 2).reduce((a, b) => a + b), 'loss goes down');
    assert.equal((hist.array('evalLoss') as Array<number | null>).filter((x) => x !== null).length, 3);
    const { loss, metrics } = await tr.evaluate([cls([0, 1, 2, 3])]);
    assert.ok(loss < 0.5 * losses[0], `eval loss ${loss} vs first ${losses[0]}`);
    assert.ok(metrics.accuracy >= 0.75, `accuracy ${metrics.accuracy}`);

    const tr2 = new Trainer(m, ad, { lr: 1e-3, callbacks: [{ onStep: (r) => { if (r.step === 3) requestStop(); } }] });
    await assert.rejects(tr2.fit({ train, epochs: 10 }), TrainingInterrupted);
    assert.equal(tr2.updates, 3);
    tr.dispose(); tr2.dispose(); ad.unload();
  });

  it('lossAndGrads returns one gradient per trainable tensor, none for the frozen base', async () => {
    const ad = injectShareLoRA(m, { r: 2, targets: ['q', 'k', 'v'], share: 'AB', modulesToSave: [] });
    const { grads } = await lossAndGrads(m, ad, cls([0, 1]));
    assert.equal(grads.size, 6);
    tf.dispose([...grads.values()]);
    ad.unload();
  });
});

describe('generate', () => {
  it('greedy decoding is deterministic and follows the argmax; beams and sampling run', async () => {
    await testBackend();
    const lm = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
    const a = await generate(lm, [[5, 6, 7]], { maxNewTokens: 4 });
    assert.deepEqual(a, await generate(lm, [[5, 6, 7]], { maxNewTokens: 4 }));
    const { logits } = lm.forward({ inputIds: [[5, 6, 7]] });
    assert.equal(a[0][0], (await tf.argMax(tf.reshape(tf.slice(logits, [0, 2, 0], [1, 1, 512]), [512])).data())[0]);
    assert.equal((await generate(lm, [[5]], { maxNewTokens: 3, numBeams: 3 }))[0].length, 3);
    assert.equal((await generate(lm, [[5]], { maxNewTokens: 3, temperature: 0.8, topK: 20, seed: 1 }))[0].length, 3);
    lm.dispose();
  });

  it('prompts decoded together (right-padded, in one pass or in chunks) give what each gives alone, with an adapter, on GPT-2 and LLaMA', async () => {
    await testBackend();
    for (const family of ['gpt2', 'llama']) {
      const lm = loadModelFromDir(join(FIXTURES, family, 'model'));
      const ad = injectShareLoRA(lm, { r: 4, targets: ['q', 'v'], share: 'A', seed: 3 });
      // nonzero B, so the adapter changes the logits
      for (const v of ad.namedParameters().values()) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 7));
      const prompts = [[5, 6, 7], [9], [11, 12, 13, 14, 15, 16], [2, 40]];
      const alone: number[][] = [];
      for (const p of prompts) alone.push((await generate(lm, [p], { maxNewTokens: 6 }))[0]);
      assert.deepEqual(await generate(lm, prompts, { maxNewTokens: 6 }), alone, family);
      assert.deepEqual(await generate(lm, prompts, { maxNewTokens: 6, batchSize: 3 }), alone, `${family}, chunks of 3`);
      // a row that ends (EOS) leaves the batch; the others go on as they would alone
      const eos = alone[1][1];
      const stopped = alone.map((o) => (o.indexOf(eos) < 0 ? o : o.slice(0, o.indexOf(eos) + 1)));
      assert.deepEqual(await generate(lm, prompts, { maxNewTokens: 6, eosTokenId: eos }), stopped, `${family}, EOS`);
      // sampling: a prompt's sample does not depend on which prompts come with it
      const sampled = await generate(lm, prompts, { maxNewTokens: 5, temperature: 1, seed: 4 });
      assert.deepEqual((await generate(lm, [prompts[0]], { maxNewTokens: 5, temperature: 1, seed: 4 }))[0], sampled[0]);
      ad.unload();
      lm.dispose();
    }
  });
});

describe('evaluate', () => {
  it('a causal LM is scored per predicted token, however the tokens are batched', async () => {
    await testBackend();
    const lm = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
    const ad = injectShareLoRA(lm, { r: 4, targets: ['c_attn'], share: 'A', seed: 1 });
    const tr = new Trainer(lm, ad);
    const long = { inputIds: [rows[0], rows[1]], labels: [rows[0], rows[1]] }; // 2 × 7 predicted tokens
    const short = { inputIds: [rows[2].slice(0, 4)], labels: [[...rows[2].slice(0, 3), -100]] }; // 2 predicted (one ignored)
    const each = await Promise.all([long, short].map((b) => tr.evaluate([b])));
    const together = await tr.evaluate([long, short]);
    const want = (each[0].loss * 14 + each[1].loss * 2) / 16;
    assert.ok(Math.abs(together.loss - want) < 1e-6 * Math.abs(want), `${together.loss} vs token-weighted ${want}`);
    // and not the mean of the two batch means
    assert.ok(Math.abs(together.loss - (each[0].loss + each[1].loss) / 2) > 1e-4);
    assert.ok(Math.abs(together.metrics.perplexity - Math.exp(want)) < 1e-4 * Math.exp(want));
    ad.unload();
    lm.dispose();
  });
});
