/**
 * Training settings that would quietly destroy weights are refused at
 * construction, naming the setting; the nested `optimizer: { name, lr }`
 * form is honoured; and an update that would leave a parameter or moment
 * non-finite is refused before it is applied.
 */
import { describe, it, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { injectShareLoRA, type ShareLoraAdapter } from '../src/adapters/sharelora.js';
import { loadModelFromDir } from '../src/models/load.js';
import type { Model } from '../src/models/types.js';
import { AdamW } from '../src/train/adamw.js';
import { lossAndGrads } from '../src/train/loss.js';
import { resolveTrainerOptions, type TrainerOptions } from '../src/train/options.js';
import { lrMultiplier, type ScheduleName } from '../src/train/schedule.js';
import { NonFiniteError, Trainer } from '../src/train/trainer.js';
import { OptionsError } from '../src/util/options.js';
import { FIXTURES, testBackend } from './helpers.js';

const ids = [[5, 17, 99, 3, 250, 11], [8, 300, 21, 64, 2, 9]];
const batch = { inputIds: ids, labels: ids };
const values = (m: Map<string, tf.Tensor>) => [...m].map(([n, v]) => [n, Array.from(v.dataSync())] as const);

describe('Trainer settings', () => {
  let model: Model;
  const live: ShareLoraAdapter[] = [];
  const adapt = (o: Parameters<typeof injectShareLoRA>[1] = {}) => { const ad = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], init: 'random', seed: 3, ...o }); live.push(ad); return ad; };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
  });

  it('each setting that would ruin training is an OptionsError naming it, raised before anything is allocated', () => {
    const ad = adapt();
    const cases: Array<[TrainerOptions, string, RegExp]> = [
      [{ lr: NaN }, 'lr', /finite number ≥ 0, got NaN/],
      [{ lr: Infinity }, 'lr', /got Infinity/],
      [{ lr: -1 }, 'lr', /got -1/],
      [{ lr: '1e-3' as never }, 'lr', /got "1e-3"/],
      [{ betas: [1, 0.999] }, 'betas', /two numbers in \[0, 1\)/],
      [{ betas: [0.9] as never }, 'betas', /got \[0.9\]/],
      [{ betas: [0.9, NaN] }, 'betas', /got \[0.9, NaN\]/],
      [{ eps: 0 }, 'eps', /> 0/],
      [{ eps: -1e-8 }, 'eps', /> 0/],
      [{ weightDecay: -0.1 }, 'weightDecay', /≥ 0/],
      [{ lr: 2, weightDecay: 0.5 }, 'weightDecay', /times lr must be below 1/],
      [{ schedule: 'bogus' as ScheduleName }, 'schedule', /one of "constant", "linear", "cosine", got "bogus"/],
      [{ warmupSteps: 10, totalSteps: 5 }, 'warmupSteps', /\(10\) is more than the 5 optimizer updates/],
      [{ warmupSteps: 1.5 }, 'warmupSteps', /non-negative integer/],
      [{ warmupRatio: 1.5 }, 'warmupRatio', /\[0, 1\]/],
      [{ warmupSteps: 2, warmupRatio: 0.1 }, 'warmupSteps', /both given/],
      [{ totalSteps: 0 }, 'totalSteps', /positive integer/],
      [{ gradAccumulation: 2.5 }, 'gradAccumulation', /positive integer/],
      [{ gradAccumulation: 0 }, 'gradAccumulation', /positive integer/],
      [{ maxGradNorm: -1 }, 'maxGradNorm', /> 0, or 0 for no clipping/],
      [{ maxGradNorm: NaN }, 'maxGradNorm', /got NaN/],
      [{ onNonFinite: 'ignore' as never }, 'onNonFinite', /"error", "skip"/],
      [{ seed: 1.5 }, 'seed', /integer/],
      [{ callbacks: [{ onStep: 3 }] as never }, 'callbacks[0].onStep', /must be a function/],
      [{ optimizer: 'sgd' as never }, 'optimizer', /must be "adamw"/],
      [{ optimizer: { name: 'sgd' as never } }, 'optimizer.name', /the only optimizer/],
      [{ optimizer: { lr: NaN } }, 'optimizer.lr', /got NaN/],
      [{ lr: 1e-3, optimizer: { name: 'adamw', lr: 1e-2 } }, 'lr', /given twice with different values: lr: 0.001 and optimizer.lr: 0.01/],
    ];
    const tensors = tf.memory().numTensors;
    for (const [opts, field, message] of cases) {
      assert.throws(() => new Trainer(model, ad, opts), (e: Error) => {
        assert.ok(e instanceof OptionsError, `${JSON.stringify(opts)}: got ${e.name}: ${e.message}`);
        assert.equal(e.field, field, e.message);
        assert.match(e.message, message);
        assert.match(e.message, new RegExp(`^Trainer: option "${field.replace(/[[\].]/g, '\\$&')}"`));
        return true;
      });
    }
    assert.equal(tf.memory().numTensors, tensors);
    // the AdamW class on its own checks the same way
    assert.throws(() => new AdamW({ betas: [0.9, 1] }), (e: Error) => e instanceof OptionsError && e.where === 'AdamW' && e.field === 'betas');
  });

  it('the resolved settings are one frozen object; a misspelled schedule no longer decays as cosine', () => {
    const o = resolveTrainerOptions({ lr: 2e-3, schedule: 'linear', warmupRatio: 0.1 });
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.betas) && Object.isFrozen(o.callbacks));
    assert.deepEqual({ ...o, betas: [...o.betas], callbacks: [...o.callbacks] }, {
      lr: 2e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, schedule: 'linear', warmupRatio: 0.1,
      maxGradNorm: 0, gradAccumulation: 1, onNonFinite: 'error', seed: 0, callbacks: [],
    });
    assert.throws(() => lrMultiplier('cosin' as ScheduleName, 5, 0, 10), /unknown schedule "cosin"/);
  });

  it('warm-up longer than what fit() will run is refused before the first step', async () => {
    const ad = adapt();
    const tr = new Trainer(model, ad, { warmupSteps: 5, schedule: 'linear' });
    const before = values(ad.namedParameters());
    await assert.rejects(tr.fit({ train: [batch, batch], epochs: 2 }), (e: Error) => e instanceof OptionsError && e.field === 'warmupSteps' && /more than the 4 optimizer updates/.test(e.message));
    assert.deepEqual(values(ad.namedParameters()), before);
    assert.equal(tr.totalSteps, undefined, 'a refused fit() leaves the schedule unset');
    // a schedule that needs a length, stepped without one, says so before computing anything
    await assert.rejects(tr.step(batch), (e: Error) => e instanceof OptionsError && e.field === 'totalSteps');
    assert.equal(tr.microStep, 0);
    tr.dispose();
  });

  it("the spec's nested form `optimizer: { name: 'adamw', lr }` trains at that lr, exactly like the shorthand", async () => {
    const run = async (opts: TrainerOptions) => {
      const ad = adapt();
      const tr = new Trainer(model, ad, opts);
      for (let i = 0; i < 2; i++) await tr.step(batch);
      const out = { lr: tr.baseLr, decay: tr.optimizer.weightDecay, betas: [tr.optimizer.beta1, tr.optimizer.beta2], params: values(ad.namedParameters()) };
      tr.dispose();
      ad.unload();
      return out;
    };
    const nested = await run({ optimizer: { name: 'adamw', lr: 5e-2, betas: [0.8, 0.99], weightDecay: 0 } });
    const flat = await run({ lr: 5e-2, betas: [0.8, 0.99], weightDecay: 0 });
    const fallback = await run({});
    assert.equal(nested.lr, 5e-2);
    assert.deepEqual(nested, flat);
    assert.notDeepEqual(nested.params, fallback.params, 'the default lr would train differently');
    // the same value in both places is not a conflict
    new Trainer(model, adapt(), { lr: 5e-2, optimizer: { name: 'AdamW', lr: 5e-2 } }).dispose();
  });

  it('an update that would overflow float32 is refused: parameters, moments and step stay those of the last good update', async () => {
    // B = 0 keeps the forward finite while A = 1e19 makes dL/dB ~1e20: finite, but g² overflows the second moment
    const ad = adapt({ targets: ['v'], share: 'none', init: 'kaiming' });
    const A = [...ad.namedParameters()].filter(([n]) => n.includes('lora_A')).map(([, v]) => v);
    const tr = new Trainer(model, ad, { lr: 1e-3 });
    const skip = new Trainer(model, ad, { lr: 1e-3, onNonFinite: 'skip' });
    for (const v of A) tf.tidy(() => v.assign(tf.mul(tf.sign(v), 1e19)));
    const snapshot = (t: Trainer) => ({ params: values(ad.namedParameters()), m: values(t.optimizer.m), v: values(t.optimizer.v), step: t.optimizer.step });
    const before = snapshot(tr);
    const tensors = tf.memory().numTensors;
    const err = await tr.step(batch).then(() => undefined, (e) => e);
    assert.ok(err instanceof NonFiniteError, `expected NonFiniteError, got ${err}`);
    assert.equal(err.kind, 'update');
    assert.ok(err.parameter.includes('lora_B'), err.parameter);
    assert.match(err.message, /non-finite update for .*lora_B.* at step 1; parameters and optimizer state keep the values of step 0/);
    assert.deepEqual(snapshot(tr), before, 'nothing was applied');
    assert.equal(tf.memory().numTensors, tensors, 'the refused update freed its candidates');
    assert.ok(Number.isNaN(await skip.step(batch)) === false);
    assert.deepEqual({ ...snapshot(skip), m: [], v: [] }, { ...before, m: [], v: [] });
    assert.ok(Number.isNaN(skip.records[0].lr), 'a skipped update is recorded with lr NaN');
    tr.dispose();
    skip.dispose();
  });

  it('an update checked on the device (gradients beyond the host bound) applies exactly what AdamW computes', async () => {
    // dL/dB ~1e16: its square fits float32 but is past the bound that lets the host skip the check
    const make = () => {
      const ad = adapt({ targets: ['v'], share: 'none', init: 'kaiming', seed: 9 });
      for (const [n, v] of ad.namedParameters()) if (n.includes('lora_A')) tf.tidy(() => v.assign(tf.mul(tf.sign(v), 1e15)));
      return ad;
    };
    const ad1 = make();
    const tr = new Trainer(model, ad1, { lr: 1e-3 });
    await tr.step(batch);
    assert.equal(tr.optimizer.step, 1);
    const got = values(ad1.namedParameters());
    tr.dispose();
    ad1.unload();
    const ad2 = make();
    const { grads } = await lossAndGrads(model, ad2, batch, { training: true });
    const norm = Math.sqrt([...grads.values()].reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(tf.cast(g, 'float32')))).dataSync()[0], 0));
    assert.ok(norm > 1e15 && Number.isFinite(norm), `the test needs a huge finite gradient (norm ${norm})`);
    const opt = new AdamW();
    opt.apply(ad2.namedParameters(), grads, { lr: 1e-3, gradScale: 1 });
    tf.dispose([...grads.values()]);
    assert.deepEqual(got, values(ad2.namedParameters()));
    assert.ok(got.every(([, v]) => v.every(Number.isFinite)));
    opt.dispose();
  });

  it('AdamW takes the learning rate per update: a schedule of lrs equals a fixed lr step by step, and a misplaced lr is an error', async () => {
    const params = () => new Map([['p', tf.variable(tf.tensor1d([0.5, -1, 2]))]]);
    const grads = (i: number) => new Map([['p', tf.tensor1d([0.1 * (i + 1), -0.3, 0.2])]]);
    const run = async (lrs: number[]) => {
      const opt = new AdamW({ weightDecay: 0.1 });
      const ps = params();
      for (const [i, lr] of lrs.entries()) {
        const g = grads(i);
        assert.equal(await opt.update(ps, g, { lr, gradScale: 1, gradNorm: 0.5 }), undefined);
        tf.dispose([...g.values()]);
      }
      const out = { p: Array.from(ps.get('p')!.dataSync()), m: Array.from(opt.m.get('p')!.dataSync()), step: opt.step, state: await opt.state() };
      tf.dispose([...ps.values()]);
      opt.dispose();
      return out;
    };
    const fixed = await run([1e-2, 1e-2, 1e-2]);
    const varied = await run([1e-2, 5e-3, 0]);
    assert.deepEqual(fixed.m, varied.m, 'the moments do not depend on lr');
    assert.notDeepEqual(fixed.p, varied.p, 'each update used its own lr');
    assert.equal(varied.step, 3);
    // lr 0 with weight decay changes nothing in the last step: replaying two steps and one at lr 0 gives the same p
    const two = await run([1e-2, 5e-3]);
    assert.deepEqual(two.p, varied.p);
    const opt = new AdamW();
    const ps = params(), g = grads(0);
    assert.throws(() => new AdamW({ lr: 1e-3 } as never), (e: Error) => e instanceof OptionsError && e.where === 'AdamW' && e.field === 'lr' && /argument of each update/.test(e.message));
    assert.throws(() => opt.lr, (e: Error) => e instanceof OptionsError && e.field === 'lr' && /opt\.update\(params, grads, \{ lr \}\)/.test(e.message));
    await assert.rejects(opt.update(ps, g, { lr: NaN }), (e: Error) => e instanceof OptionsError && e.where === 'AdamW.update' && e.field === 'lr' && /got NaN/.test(e.message));
    await assert.rejects(opt.update(ps, g, 1 as never), (e: Error) => e instanceof OptionsError && e.where === 'AdamW.update' && /expects an options object/.test(e.message));
    assert.throws(() => opt.apply(ps, g, { lr: 200 }), (e: Error) => e instanceof OptionsError && e.field === 'weightDecay' && /times lr must be below 1/.test(e.message));
    assert.equal(opt.step, 0, 'a refused update changes nothing');
    // the state loader: another optimizer continues exactly
    opt.loadState(two.state, ps);
    assert.equal(opt.step, 2);
    assert.deepEqual(Array.from(opt.m.get('p')!.dataSync()), Array.from(two.state.m.get('p')!.data));
    assert.throws(() => opt.loadState({ step: 1, m: new Map([['q', { shape: [3], data: new Float32Array(3) }]]), v: new Map() }, ps), /AdamW\.loadState: m has "q" \[3\], which is no trainable parameter/);
    assert.equal(opt.step, 2, 'a refused state changes nothing');
    tf.dispose([...ps.values(), ...g.values()]);
    opt.dispose();
  });

  it("the Trainer's lr is stored once and passed to each update; a state records the lr of the last update", async () => {
    const ad = adapt();
    const tr = new Trainer(model, ad, { lr: 2e-2, schedule: 'linear', warmupSteps: 2, totalSteps: 4 });
    assert.equal((await tr.state()).optimizer.lr, 2e-2, 'before any update: the base lr');
    const seen: number[] = [];
    const update = tr.optimizer.update.bind(tr.optimizer);
    tr.optimizer.update = (params, grads, o) => { seen.push(o.lr); return update(params, grads, o); };
    for (let i = 0; i < 3; i++) await tr.step(batch);
    assert.deepEqual(seen, [0, 1e-2, 2e-2], 'warm-up 0, 1/2, then the peak');
    assert.deepEqual(tr.records.map((r) => r.lr), seen);
    assert.equal((await tr.state()).optimizer.lr, 2e-2);
    assert.equal(tr.baseLr, 2e-2);
    tr.dispose();
  });

  it('resume overrides are checked before the adapter is loaded', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'sl-settings-'));
    try {
      const ad = adapt();
      const tr = new Trainer(model, ad, { lr: 1e-2, warmupSteps: 1, totalSteps: 4, schedule: 'linear' });
      await tr.step(batch);
      await tr.save(join(dir, 'ck'));
      tr.dispose();
      ad.unload();
      await assert.rejects(Trainer.resume(join(dir, 'ck'), model, { lr: NaN }), (e: Error) => e instanceof OptionsError && e.field === 'lr' && e.where === 'Trainer.resume');
      assert.ok([...model.linears.values()].every((l) => !l.lora), 'no adapter left on the model');
      // an override in the nested form replaces the saved lr; warmupRatio replaces the saved warmupSteps
      const back = await Trainer.resume(join(dir, 'ck'), model, { optimizer: { lr: 3e-2 }, warmupRatio: 0.5 });
      live.push(back.adapter as ShareLoraAdapter);
      assert.equal(back.baseLr, 3e-2);
      assert.deepEqual([back.opts.warmupSteps, back.opts.warmupRatio, back.totalSteps], [undefined, 0.5, 4]);
      back.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
