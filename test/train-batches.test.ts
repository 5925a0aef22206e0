/**
 * Bad labels and shapes are a BatchError naming the field, the offending
 * value and what was expected — for host arrays (checked before upload) and
 * for tensors (checked on the device, read with the loss) — and a refused
 * batch changes nothing: parameters, moments, counters, the accumulation.
 */
import { describe, it, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { injectShareLoRA, type ShareLoraAdapter } from '../src/adapters/sharelora.js';
import { loadModelFromDir } from '../src/models/load.js';
import type { Model } from '../src/models/types.js';
import { BatchError } from '../src/train/batch.js';
import { lossAndGrads, type Batch } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import { OptionsError } from '../src/util/options.js';
import { FIXTURES, testBackend } from './helpers.js';

const rows = [[0, 17, 99, 3, 250, 11], [0, 300, 21, 64, 2, 9]];
const ones = rows.map((r) => r.map(() => 1));

/** every number the training state holds */
function state(tr: Trainer) {
  const copy = (m: Map<string, tf.Tensor>) => [...m].map(([n, v]) => [n, Array.from(v.dataSync())]);
  return { params: copy(tr.adapter.namedParameters()), m: copy(tr.optimizer.m), accum: copy(tr.accum), counters: [tr.optimizer.step, tr.microStep, tr.accumCount, tr.accumLoss, tr.records.length], tensors: tf.memory().numTensors };
}

async function refused(tr: Trainer, batch: unknown, field: string, message: RegExp): Promise<void> {
  const before = state(tr);
  await assert.rejects(tr.step(batch as Batch), (e: Error) => {
    assert.ok(e instanceof BatchError, `expected BatchError, got ${e.name}: ${e.message}`);
    assert.equal(e.field, field, e.message);
    assert.match(e.message, message);
    assert.ok(e.message.startsWith(`trainer.step: batch.${field} `), e.message);
    return true;
  });
  assert.deepEqual(state(tr), before, `${field}: the refused batch changed the training state`);
}

describe('batch checks', () => {
  let cls: Model, lm: Model;
  const live: ShareLoraAdapter[] = [];
  const adapt = (m: Model) => { const ad = injectShareLoRA(m, { r: 2, targets: ['q', 'v'], init: 'random', seed: 1 }); live.push(ad); return ad; };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    cls = loadModelFromDir(join(FIXTURES, 'roberta', 'model')); // 3 labels, vocabulary 512
    lm = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
  });

  it('classification labels from the host: outside the head, negative, fractional, too many; and the batch fields', async () => {
    const tr = new Trainer(cls, adapt(cls), { lr: 1e-2, gradAccumulation: 2 });
    await tr.step({ inputIds: rows, attentionMask: ones, labels: [0, 1] }); // half an accumulation is pending
    await refused(tr, { inputIds: rows, labels: [0, 5] }, 'labels[1]', /is 5, expected a class id in \[0, 3\) \(the head has 3 labels\) or -100/);
    await refused(tr, { inputIds: rows, labels: [-1, 0] }, 'labels[0]', /is -1, expected a class id/);
    await refused(tr, { inputIds: rows, labels: [0.5, 1] }, 'labels[0]', /is 0.5, expected a class id/);
    await refused(tr, { inputIds: rows, labels: [0, 1, 2] }, 'labels', /has shape \[3\], expected \[2\] \(one label per row of inputIds\)/);
    await refused(tr, { inputIds: rows, labels: [-100, -100] }, 'labels', /are all -100: no example to learn from, so the loss is 0 and an update would only apply weight decay/);
    await refused(tr, { inputIds: rows, attentionMask: [[1, 1, 1]], labels: [0, 1] }, 'attentionMask', /has shape \[1, 3\], expected \[2, 6\] like inputIds/);
    await refused(tr, { inputIds: rows, attentionMask: [[1, 1, 1, 1, 1, 2], ones[1]], labels: [0, 1] }, 'attentionMask[0][5]', /is 2, expected 0 \(padding\) or 1/);
    await refused(tr, { inputIds: [rows[0], [...rows[1].slice(0, 5), 512]], labels: [0, 1] }, 'inputIds[1][5]', /is 512, expected a token id in \[0, 512\)/);
    await refused(tr, { inputIds: [rows[0], rows[1].slice(1)], labels: [0, 1] }, 'inputIds[1]', /has length 5, expected 6 like row 0/);
    await refused(tr, { inputIds: rows, attention_mask: ones, labels: [0, 1] }, 'attention_mask', /is not a batch field; did you mean "attentionMask"\?/);
    await refused(tr, { inputIds: rows }, 'labels', /is missing/);
    // one ignored example among real ones is fine: only a batch with nothing to learn is refused
    await tr.step({ inputIds: rows, attentionMask: ones, labels: [-100, 2] });
    assert.equal(tr.optimizer.step, 1);
    tr.dispose();
  });

  it('causal-LM labels from the host: beyond the vocabulary, more rows or columns than inputIds, nothing to predict', async () => {
    const tr = new Trainer(lm, adapt(lm), { lr: 1e-2 });
    await refused(tr, { inputIds: rows, labels: [rows[0], [...rows[1].slice(0, 2), 600, ...rows[1].slice(3)]] }, 'labels[1][2]', /is 600, expected a token id in \[0, 512\) \(the vocabulary\) or -100/);
    await refused(tr, { inputIds: rows, labels: [...rows, rows[0]] }, 'labels', /has shape \[3,6\], expected \[2,6\] \(one label per token of inputIds\)/);
    await refused(tr, { inputIds: rows, labels: rows.map((r) => [...r, 5]) }, 'labels', /has shape \[2,7\], expected \[2,6\]/);
    // position 0 predicts nothing (labels shift by one), so a label there alone is still nothing to learn
    await refused(tr, { inputIds: rows, labels: rows.map((r) => r.map((v, j) => (j === 0 ? v : -100))) }, 'labels', /are all -100 after the first token/);
    await refused(tr, { inputIds: rows, labels: [[0, 1.5, 2, 3, 4, 5], rows[1]] }, 'labels[0][1]', /is 1.5/);
    tr.dispose();
  });

  it('tensors are checked on the device: the same errors, nothing changed, and an accumulation in progress is kept', async () => {
    const good = (i: number): Batch => ({ inputIds: tf.tensor2d(rows, undefined, 'int32'), attentionMask: tf.tensor2d(ones, undefined, 'int32'), labels: tf.tensor1d([i % 3, (i + 1) % 3], 'int32') });
    const run = async (withBad: boolean) => {
      const tr = new Trainer(cls, adapt(cls), { lr: 1e-2, gradAccumulation: 2 });
      const b0 = good(0), b1 = good(1);
      await tr.step(b0);
      if (withBad) {
        const bad = (labels: tf.Tensor, ids = tf.tensor2d(rows, undefined, 'int32')) => ({ inputIds: ids, labels });
        const cases: Array<[Batch, string, RegExp]> = [
          [bad(tf.tensor1d([0, 5], 'int32')), 'labels[1]', /is 5, expected a class id in \[0, 3\)/],
          [bad(tf.tensor1d([-1, 0], 'int32')), 'labels[0]', /is -1/],
          [bad(tf.tensor1d([0, 1.5], 'float32')), 'labels[1]', /is 1.5/],
          [bad(tf.tensor1d([-100, -100], 'int32')), 'labels', /are all -100/],
          [bad(tf.tensor1d([0, 1], 'int32'), tf.tensor2d([rows[0], [...rows[1].slice(0, 5), 700]], undefined, 'int32')), 'inputIds[1][5]', /is 700, expected a token id in \[0, 512\)/],
          [bad(tf.tensor1d([0, 1, 2], 'int32')), 'labels', /has shape \[3\], expected \[2\]/],
          [bad(tf.tensor2d([[0], [1]], undefined, 'int32')), 'labels', /has shape \[2,1\], expected rank 1/],
        ];
        for (const [b, field, message] of cases) {
          await refused(tr, b, field, message);
          tf.dispose([b.inputIds as tf.Tensor, b.labels as tf.Tensor]);
        }
      }
      await tr.step(b1);
      assert.equal(tr.optimizer.step, 1);
      const out = state(tr).params;
      tr.dispose();
      for (const b of [b0, b1]) tf.dispose([b.inputIds as tf.Tensor, b.attentionMask as tf.Tensor, b.labels as tf.Tensor]);
      live.pop()!.unload();
      return out;
    };
    assert.deepEqual(await run(true), await run(false), 'the refused batches left no trace in the update');
  });

  it('causal-LM label tensors are checked on the device too', async () => {
    const tr = new Trainer(lm, adapt(lm), { lr: 1e-2 });
    const ids = tf.tensor2d(rows, undefined, 'int32');
    const wide = tf.tensor2d([rows[0], [...rows[1].slice(0, 3), 512, ...rows[1].slice(4)]], undefined, 'int32');
    const allIgnored = tf.fill([2, 6], -100, 'int32');
    await refused(tr, { inputIds: ids, labels: wide }, 'labels[1][3]', /is 512, expected a token id in \[0, 512\)/);
    await refused(tr, { inputIds: ids, labels: allIgnored }, 'labels', /are all -100 after the first token/);
    await tr.step({ inputIds: ids, labels: ids });
    assert.equal(tr.optimizer.step, 1);
    tf.dispose([ids, wide, allIgnored]);
    tr.dispose();
  });

  it('evaluate: an empty list or a set with no label to score is refused; an all-ignored batch among others counts for nothing', async () => {
    const tr = new Trainer(lm, adapt(lm));
    await assert.rejects(tr.evaluate([]), (e: Error) => e instanceof OptionsError && /non-empty array of batches/.test(e.message) && /perplexity as 1/.test(e.message));
    const ignored = { inputIds: rows, labels: rows.map((r) => r.map(() => -100)) };
    await assert.rejects(tr.evaluate([ignored, ignored]), (e: Error) => e instanceof BatchError && /-100 in every one of the 2 batches/.test(e.message));
    const real = { inputIds: rows, labels: rows };
    assert.deepEqual(await tr.evaluate([real, ignored]), await tr.evaluate([real]));
    await assert.rejects(tr.evaluate([real, { inputIds: rows, labels: [rows[0]] }]), (e: Error) => e instanceof BatchError && e.message.startsWith('trainer.evaluate (batch 1): batch.labels has shape [1,6]'));
    tr.dispose();
    const c = new Trainer(cls, adapt(cls));
    await assert.rejects(c.evaluate([{ inputIds: rows, labels: tf.tensor1d([0, 3], 'int32') as never }]), (e: Error) => e instanceof BatchError && e.field === 'labels[1]' && /is 3/.test(e.message));
    // an ignored example is not scored: accuracy over the others only
    const both = await c.evaluate([{ inputIds: rows, labels: [-100, 1] }]);
    const one = await c.evaluate([{ inputIds: [rows[1]], labels: [1] }]);
    assert.equal(both.metrics.accuracy, one.metrics.accuracy);
    assert.ok(Math.abs(both.loss - one.loss) < 1e-6, `${both.loss} vs ${one.loss}`);
    c.dispose();
  });

  it('lossAndGrads and fit check batches too; fit checks every batch before the first step', async () => {
    const ad = adapt(cls);
    await assert.rejects(lossAndGrads(cls, ad, { inputIds: rows, labels: [0, 3] }), (e: Error) => e instanceof BatchError && e.where === 'lossAndGrads');
    const tr = new Trainer(cls, ad);
    const good = { inputIds: rows, labels: [0, 1] };
    await assert.rejects(tr.fit({ train: [good, good, { inputIds: rows, labels: [0, 9] }] }), (e: Error) => e instanceof BatchError && e.where === 'trainer.fit: train[2]' && e.field === 'labels[1]');
    assert.equal(tr.microStep, 0, 'no step ran');
    await assert.rejects(tr.fit({ train: [] }), (e: Error) => e instanceof OptionsError && e.field === 'train');
    tr.dispose();
  });
});
