/**
 * Nothing grows with use: once warm (AdamW moments and rotary caches exist),
 * tf.memory() must return to exactly the same tensor count and bytes after
 * every round of training steps, fit(), evaluate(), generate() and forward
 * passes on the tiny HF fixtures — a few hundred steps in all. Failing
 * calls, too: every error path frees what it allocated.
 */
import { describe, it, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { injectShareLoRA, type ShareLoraAdapter } from '../../src/adapters/sharelora.js';
import { generate } from '../../src/models/generate.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import { lossAndGrads } from '../../src/train/loss.js';
import { Trainer } from '../../src/train/trainer.js';
import { FIXTURES, testBackend } from '../helpers.js';

const ids = (seed: number, B = 2, T = 6) => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 131 + b * 37 + t * 11) % 500 + 3));
const clsBatch = (s: number) => ({ inputIds: ids(s), attentionMask: ids(s).map((r) => r.map((_, t) => (t < 5 || s % 2 ? 1 : 0))), labels: [s % 3, (s + 1) % 3] });
const lmBatch = (s: number) => ({ inputIds: ids(s), labels: ids(s) });

/** run `round` once to warm up, then `rounds` more times, asserting memory returns to the warm level each time */
async function flat(what: string, rounds: number, round: (i: number) => Promise<unknown>): Promise<void> {
  await round(0);
  const warm = tf.memory();
  for (let i = 1; i <= rounds; i++) {
    await round(i);
    const now = tf.memory();
    assert.equal(now.numTensors, warm.numTensors, `${what}: round ${i} holds ${now.numTensors - warm.numTensors} more tensors than after warm-up`);
    assert.equal(now.numBytes, warm.numBytes, `${what}: round ${i} holds ${now.numBytes - warm.numBytes} more bytes than after warm-up`);
  }
}

describe('no tensor leaks', () => {
  const m: Record<string, Model> = {};
  // a failed test must not leave its adapter on a shared model for the next one
  const live: ShareLoraAdapter[] = [];
  const adapt = (model: Model, o: Parameters<typeof injectShareLoRA>[1]) => { const ad = injectShareLoRA(model, o); live.push(ad); return ad; };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    for (const f of ['roberta', 'llama', 'gpt2']) m[f] = loadModelFromDir(join(FIXTURES, f, 'model'));
  });

  it('Trainer.step: 100 steps of RoBERTa (dropout, clipping, trained classifier head)', async () => {
    const ad = adapt(m.roberta, { r: 4, targets: ['q', 'v'], share: 'A', dropout: 0.1 });
    const tr = new Trainer(m.roberta, ad, { lr: 1e-3, maxGradNorm: 0.5 });
    await flat('roberta step', 4, async (r) => { for (let i = 0; i < 20; i++) await tr.step(clsBatch(r * 20 + i)); });
    tr.dispose();
    ad.unload();
  });

  it('Trainer.step: 40 steps of LLaMA with gradient accumulation 4 and a linear schedule', async () => {
    const ad = adapt(m.llama, { r: 4, targets: ['q', 'v', 'down'], share: 'AB', dropout: 0.05 });
    const tr = new Trainer(m.llama, ad, { lr: 1e-3, gradAccumulation: 4, schedule: 'linear', totalSteps: 100, warmupSteps: 2 });
    await flat('llama step', 4, async (r) => { for (let i = 0; i < 8; i++) await tr.step(lmBatch(r * 8 + i)); });
    tr.dispose();
    ad.unload();
  });

  it('fit(): memory is the same after every update, and a finished trainer leaves nothing', async () => {
    const ad = adapt(m.roberta, { r: 4, targets: ['q', 'v'], share: 'B', dropout: 0.1 });
    const before = tf.memory().numTensors;
    const seen: Array<{ numTensors: number; numBytes: number }> = [];
    const tr = new Trainer(m.roberta, ad, { lr: 1e-3, gradAccumulation: 2, schedule: 'cosine', warmupRatio: 0.1, callbacks: [{ onStep: () => { seen.push(tf.memory()); } }] });
    await tr.fit({ train: [0, 1, 2, 3, 4].map(clsBatch), eval: [clsBatch(9)], evalEvery: 2, epochs: 5 });
    assert.equal(seen.length, 15, '3 updates per epoch (the fifth batch is flushed at the epoch end)');
    for (const [i, s] of seen.entries()) {
      assert.equal(s.numTensors, seen[1].numTensors, `update ${i + 1}: ${s.numTensors} tensors vs ${seen[1].numTensors}`);
      assert.equal(s.numBytes, seen[1].numBytes);
    }
    tr.dispose();
    assert.equal(tf.memory().numTensors, before + 0, 'dispose() frees the optimizer moments');
    ad.unload();
  });

  it('evaluate(): classification and causal LM', async () => {
    const ad = adapt(m.roberta, { r: 2, targets: ['q', 'v'] });
    const tr = new Trainer(m.roberta, ad);
    await flat('roberta evaluate', 3, async (r) => tr.evaluate([clsBatch(r), clsBatch(r + 1), clsBatch(r + 2)]));
    tr.dispose();
    ad.unload();
    const lm = adapt(m.llama, { r: 2, targets: ['q', 'v'] });
    const lt = new Trainer(m.llama, lm);
    await flat('llama evaluate', 3, async (r) => lt.evaluate([lmBatch(r), lmBatch(r + 1)]));
    lt.dispose();
    lm.unload();
  });

  it('generate(): greedy, sampling and beam search, with an adapter attached', async () => {
    const ad = adapt(m.gpt2, { r: 2, targets: ['q', 'v'], init: 'random' });
    await flat('gpt2 generate', 2, async (r) => {
      await generate(m.gpt2, [[5 + r, 6, 7]], { maxNewTokens: 6 });
      await generate(m.gpt2, [[9, 10]], { maxNewTokens: 4, temperature: 0.9, topK: 20, seed: r });
      await generate(m.gpt2, [[11]], { maxNewTokens: 3, numBeams: 2 });
    });
    ad.unload();
    await flat('llama generate', 2, async (r) => generate(m.llama, [[1, 2 + r, 3]], { maxNewTokens: 5 }));
  });

  it('failing calls: 20 of each kind leave no tensor and no byte behind', async () => {
    const ad = adapt(m.roberta, { r: 4, targets: ['q', 'v'], share: 'A', dropout: 0.1, init: 'random' });
    // the real model, failing after a whole forward pass: the tape then holds every saved activation
    const broken = Object.create(m.roberta, { loss: { value: () => { throw new Error('loss failed after the forward pass'); } } }) as Model;
    const tr = new Trainer(m.roberta, ad, { lr: 1e-3, gradAccumulation: 2 });
    const brokenTr = new Trainer(broken, ad, { lr: 1e-3 });
    const scheduled = new Trainer(m.roberta, ad, { schedule: 'linear' });
    const labelsT = tf.tensor1d([0, 7], 'int32');
    const idsT = tf.tensor2d(ids(1), undefined, 'int32');
    await tr.step(clsBatch(0)); // moments exist, and half an accumulation is pending
    const failures: Array<[string, () => Promise<unknown>]> = [
      ['attention mask of the wrong shape', () => tr.step({ ...clsBatch(1), attentionMask: [[1, 1, 1]] })],
      ['labels outside the head', () => tr.step({ ...clsBatch(1), labels: [0, 7] })],
      ['label tensor outside the head (device check)', () => tr.step({ inputIds: idsT, labels: labelsT })],
      ['loss throwing after the forward pass', () => brokenTr.step(clsBatch(2))],
      ['evaluate with that loss', () => brokenTr.evaluate([clsBatch(2), clsBatch(3)])],
      ['lossAndGrads with that loss', () => lossAndGrads(broken, ad, clsBatch(2))],
      ['a schedule without totalSteps', () => scheduled.step(clsBatch(1))],
      ['fit with a bad batch', () => tr.fit({ train: [clsBatch(1), { ...clsBatch(2), labels: [1] }] })],
    ];
    for (const [what, call] of failures) {
      await assert.rejects(call(), `${what} should fail`);
      const before = tf.memory();
      for (let i = 0; i < 20; i++) await assert.rejects(call());
      const after = tf.memory();
      assert.equal(after.numTensors - before.numTensors, 0, `${what}: 20 failing calls left ${after.numTensors - before.numTensors} tensors`);
      assert.equal(after.numBytes - before.numBytes, 0, `${what}: 20 failing calls left ${after.numBytes - before.numBytes} bytes`);
    }
    assert.equal(tr.accumCount, 1, 'the pending accumulation survived every failure');
    tf.dispose([labelsT, idsT]);
    for (const t of [tr, brokenTr, scheduled]) t.dispose();
    ad.unload();
  });

  it('forward passes in training and inference mode (merged and unmerged)', async () => {
    const ad = adapt(m.llama, { r: 2, targets: ['q', 'k', 'v', 'o'], dropout: 0.2, init: 'random' });
    await flat('llama forward', 3, async (r) => {
      for (const training of [true, false]) tf.dispose(m.llama.forward({ inputIds: ids(r), training }).logits);
      ad.merge();
      tf.dispose(m.llama.forward({ inputIds: ids(r) }).logits);
      ad.unmerge();
    });
    ad.unload();
  });
});
