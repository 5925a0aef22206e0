/**
 * Numerical faults: a NaN/Inf loss or gradient stops training with an error
 * naming the step and the first offending parameter — or skips the update
 * with onNonFinite: 'skip' — and in both cases parameters, AdamW moments and
 * step count stay exactly those of the last good update.
 */
import { describe, it, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { injectShareLoRA, type ShareLoraAdapter } from '../../src/adapters/sharelora.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import { lossAndGrads } from '../../src/train/loss.js';
import { NonFiniteError, Trainer } from '../../src/train/trainer.js';
import { FIXTURES, testBackend } from '../helpers.js';

const ids = [[5, 17, 99, 3, 250, 11], [8, 300, 21, 64, 2, 9]];
const batch = { inputIds: ids, labels: ids };

/** every number training state holds, copied */
function snapshot(tr: Trainer, ad: ShareLoraAdapter) {
  const copy = (m: Map<string, tf.Tensor>) => [...m].map(([n, v]) => [n, Array.from(v.dataSync())]);
  return { params: copy(ad.namedParameters()), m: copy(tr.optimizer.m), v: copy(tr.optimizer.v), step: tr.optimizer.step, records: tr.records.length, tensors: tf.memory().numTensors };
}

/** replace a frozen base weight for the duration of f */
async function withBaseWeight(model: Model, path: string, values: (w: tf.Tensor2D) => tf.Tensor2D, f: () => Promise<void>): Promise<void> {
  const lin = model.linears.get(path)!;
  const good = lin.weight;
  lin.weight = values(good);
  try {
    await f();
  } finally {
    lin.weight.dispose();
    lin.weight = good;
  }
}
const nanRow = (w: tf.Tensor2D) => tf.tidy(() => tf.concat([tf.fill([1, w.shape[1]], NaN), tf.slice(w, [1, 0], [w.shape[0] - 1, w.shape[1]])]) as tf.Tensor2D);

describe('NaN / Inf during training', () => {
  let model: Model;
  // a failed test must not leave its adapter on the shared model for the next one
  const live: ShareLoraAdapter[] = [];
  const adapt = (o: Parameters<typeof injectShareLoRA>[1]) => { const ad = injectShareLoRA(model, o); live.push(ad); return ad; };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
  });

  it('a NaN LoRA parameter stops at the step it happens, names the first bad gradient, and changes nothing', async () => {
    const ad = adapt({ r: 4, targets: ['q', 'v'], share: 'A', init: 'random' });
    const tr = new Trainer(model, ad, { lr: 1e-2, gradAccumulation: 2 });
    for (let i = 0; i < 4; i++) await tr.step(batch);
    const B1 = ad.namedParameters().get('base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight')!;
    const good = tf.clone(B1);
    tf.tidy(() => B1.assign(tf.fill(B1.shape, NaN)));
    const before = snapshot(tr, ad);
    await tr.step(batch);
    const err = await tr.step(batch).then(() => undefined, (e) => e);
    assert.ok(err instanceof NonFiniteError, `expected NonFiniteError, got ${err}`);
    assert.equal(err.step, 3, 'the third update (micro-steps 5 and 6) is the bad one');
    assert.match(err.message, /at step 3/);
    // the first non-finite gradient in parameter order, checked independently
    const { grads } = await lossAndGrads(model, ad, batch, { training: true });
    const first = [...grads].find(([, g]) => !tf.tidy(() => tf.all(tf.isFinite(g)).dataSync()[0]))![0];
    tf.dispose([...grads.values()]);
    assert.equal(err.parameter, first);
    assert.ok(err.message.includes(first), err.message);
    assert.deepEqual(snapshot(tr, ad), before, 'parameters, moments, step and history are those of step 2');
    B1.assign(good);
    good.dispose();
    tr.dispose();
    ad.unload();
  });

  it('a NaN in a frozen base weight: error by default; with skip the update is dropped and training goes on', async () => {
    const ad = adapt({ r: 4, targets: ['q', 'v', 'down'], share: 'B', init: 'random' });
    const errTr = new Trainer(model, ad, { lr: 1e-2 });
    const skipTr = new Trainer(model, ad, { lr: 1e-2, onNonFinite: 'skip' });
    await errTr.step(batch);
    await skipTr.step(batch);
    await withBaseWeight(model, 'model.layers.2.mlp.down_proj', nanRow, async () => {
      const before = snapshot(errTr, ad);
      await assert.rejects(errTr.step(batch), (e: Error) => e instanceof NonFiniteError && /loss \(NaN\)|and loss NaN/.test(e.message) && /at step 2/.test(e.message));
      assert.deepEqual(snapshot(errTr, ad), before);
      const beforeSkip = snapshot(skipTr, ad);
      for (let i = 0; i < 3; i++) assert.ok(Number.isNaN(await skipTr.step(batch)));
      assert.deepEqual({ ...snapshot(skipTr, ad), records: 0 }, { ...beforeSkip, records: 0 }, 'skipped updates change nothing');
      assert.equal(skipTr.records.length, beforeSkip.records + 3, 'each skipped update is recorded');
      assert.ok(skipTr.records.slice(-3).every((r) => Number.isNaN(r.lr) && r.step === 2), 'with lr NaN and the step number it would have had');
    });
    const before = snapshot(skipTr, ad);
    await skipTr.step(batch);
    assert.equal(skipTr.optimizer.step, before.step + 1, 'training resumes once the input is finite');
    assert.notDeepEqual(snapshot(skipTr, ad).params, before.params);
    errTr.dispose();
    skipTr.dispose();
    ad.unload();
  });

  it('a huge but finite gradient is not taken for an overflow: its norm is computed in float64 and clipped', async () => {
    // B = 0 keeps the forward finite while A = 1e19 makes dL/dB ~1e20, whose float32 sum of squares is Inf
    const ad = adapt({ r: 4, targets: ['v'], share: 'none' });
    for (const [n, v] of ad.namedParameters()) if (n.includes('lora_A')) tf.tidy(() => v.assign(tf.mul(tf.sign(v), 1e19)));
    const { grads } = await lossAndGrads(model, ad, batch);
    const sq = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))).dataSync()[0]);
    tf.dispose([...grads.values()]);
    assert.equal(sq, Infinity, 'the test needs a float32 overflow to mean anything');
    const tr = new Trainer(model, ad, { lr: 1e-3, maxGradNorm: 1 });
    await tr.step(batch);
    assert.equal(tr.optimizer.step, 1);
    const norm = tr.records[0].gradNorm;
    assert.ok(Number.isFinite(norm) && norm > 1e19, `norm ${norm}`);
    tr.dispose();
    ad.unload();
  });
});
