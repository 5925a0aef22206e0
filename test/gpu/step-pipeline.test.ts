/**
 * Pipelined steps (SHARELORA_WEBGPU_PIPELINE=1; Trainer.fitStep, ops.stepControl,
 * the AdamW kernels' device-side control): against replayed steps without it,
 * the same losses, gradient norms, evaluations and parameters; a bad batch in
 * the middle raises the same BatchError and leaves the same state, as step()
 * does; and the kernels themselves against the host's arithmetic. Runs on
 * lavapipe here and on the GPU machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../../src/models/load.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import { Trainer } from '../../src/train/trainer.js';
import { adamwUpdate, stepControl } from '../../src/backend/ops.js';
import * as wops from '../../src/backend/webgpu/ops.js';
import type { Batch } from '../../src/data/batch.js';
import { FIXTURES } from '../helpers.js';
import { assertParamsClose, randn, releaseGPU, spamLikeBatches as batches, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;


interface Run { pipelined: number; losses: number[]; norms: number[]; evals: Array<number | undefined>; params: Map<string, Float32Array>; replayed: number; error?: string; cursor: number; epoch: number; updates: number }

async function train(pipeline: boolean, data: Batch[], opts: { evalEvery?: number; badAt?: number; epochs?: number; maxGradNorm?: number } = {}): Promise<Run> {
  process.env.SHARELORA_WEBGPU_PIPELINE = pipeline ? '1' : '0';
  const m = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'), { task: 'seq-cls', numLabels: 2, seed: 3 });
  const ad = injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'v'], share: 'A', seed: 5 });
  // tensor batches: a bad label inside one can only be found on the device
  const made: tf.Tensor[] = [];
  const train = data.map((b, i) => {
    const labels = (b.labels as number[]).slice();
    if (i === opts.badAt) labels[1] = 7;
    const t = { inputIds: tf.tensor2d(b.inputIds as number[][], undefined, 'int32'), attentionMask: tf.tensor2d(b.attentionMask as number[][], undefined, 'int32'), labels: tf.tensor1d(labels, 'int32') };
    made.push(t.inputIds, t.attentionMask, t.labels);
    return t as Batch;
  });
  // a clipping threshold the early steps exceed, so the device's coefficient is exercised
  const trainer = new Trainer(m, ad, { lr: 2e-2, seed: 1, weightDecay: 0.01, maxGradNorm: opts.maxGradNorm ?? 0.05 });
  try {
    let error: string | undefined;
    try {
      await trainer.fit({ train, epochs: opts.epochs ?? 3, shuffle: false, ...(opts.evalEvery ? { eval: train.slice(0, 2), evalEvery: opts.evalEvery } : {}) });
    } catch (e) {
      error = (e as Error).message;
    }
    const params = new Map<string, Float32Array>();
    for (const [n, v] of ad.namedParameters()) params.set(n, (await v.data()) as Float32Array);
    return {
      losses: trainer.records.map((r) => r.loss), norms: trainer.records.map((r) => r.gradNorm), evals: trainer.records.map((r) => r.evalLoss),
      params, replayed: trainer.lastReplay?.replayed ?? 0, pipelined: trainer.lastReplay?.pipelined ?? 0, error, cursor: trainer.cursor, epoch: trainer.epoch, updates: trainer.updates,
    };
  } finally {
    trainer.dispose(); ad.unload(); m.dispose(); tf.dispose(made);
    delete process.env.SHARELORA_WEBGPU_PIPELINE;
  }
}

function assertSame(a: Run, b: Run, tol = 1e-5): void {
  assert.equal(b.error, a.error);
  assert.deepEqual([b.cursor, b.epoch, b.updates], [a.cursor, a.epoch, a.updates], 'cursor, epoch and updates');
  assert.equal(b.losses.length, a.losses.length, 'records');
  const close = (x: number, y: number) => Math.abs(x - y) <= tol * Math.max(1, Math.abs(x));
  a.losses.forEach((l, i) => assert.ok(close(l, b.losses[i]), `loss of record ${i + 1}: ${b.losses[i]} pipelined, ${l} not`));
  a.norms.forEach((l, i) => assert.ok(close(l, b.norms[i]), `gradient norm of record ${i + 1}: ${b.norms[i]} pipelined, ${l} not`));
  a.evals.forEach((l, i) => assert.ok(l === undefined ? b.evals[i] === undefined : close(l, b.evals[i]!), `evaluation at record ${i + 1}: ${b.evals[i]} pipelined, ${l} not`));
  assertParamsClose(a.params, b.params, tol);
}

describe('pipelined steps on webgpu', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP step pipeline: ${skip}`); });
  after(() => releaseGPU());

  it('train as replayed steps without it: losses, clipped norms, parameters', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(5, 4, 12, 7);
    const plain = await train(false, data);
    const piped = await train(true, data);
    assert.ok(piped.pipelined >= 8, `only ${piped.pipelined} of 15 steps pipelined`);
    assert.equal(plain.pipelined, 0);
    assert.ok(plain.norms.slice(0, 3).every((n) => n > 0.05), `the first norms ${plain.norms.slice(0, 3)} should exceed the clipping threshold`);
    assertSame(plain, piped);
  });

  it('an evaluation every 4 updates sees the parameters of its own update', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(5, 4, 12, 9);
    const plain = await train(false, data, { evalEvery: 4 });
    const piped = await train(true, data, { evalEvery: 4 });
    assert.equal(plain.evals.filter((e) => e !== undefined).length, 3);
    assert.ok(piped.pipelined >= 5, `only ${piped.pipelined} steps pipelined`);
    assertSame(plain, piped);
  });

  it('a bad label found on the device mid-fit: the same BatchError, batch position and parameters as step()', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(5, 4, 12, 13);
    // batch 7 of one epoch of 10: its shape's replay is verified by then, so the pipelined path submits it
    const plain2 = await train(false, [...data, ...data], { badAt: 7, epochs: 1 });
    const piped2 = await train(true, [...data, ...data], { badAt: 7, epochs: 1 });
    assert.ok(piped2.pipelined >= 2, `only ${piped2.pipelined} steps pipelined up to the bad batch`);
    assert.match(piped2.error ?? '', /labels\[1\]/);
    assert.equal(piped2.cursor, 7);
    assertSame(plain2, piped2);
  });

  it('without clipping (maxGradNorm 0) nothing is pipelined: the update cannot be proven finite before its read', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(4, 4, 12, 17);
    const plain = await train(false, data, { maxGradNorm: 0, epochs: 2 });
    const piped = await train(true, data, { maxGradNorm: 0, epochs: 2 });
    assert.equal(piped.pipelined, 0);
    assertSame(plain, piped);
  });

  it('stepControl: the coefficient and the decision the host makes from the same values', async (t) => {
    if (skip) return t.skip(skip);
    const ctrl = async (v: number[], nCheck: number, maxNorm: number) => {
      const vt = tf.tensor1d(v);
      const c = stepControl(vt, { nCheck, n: (v.length - 1 - nCheck) / 2, maxNorm });
      const out = Array.from(await c.data());
      tf.dispose([vt, c]);
      return out;
    };
    const near = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])));
    // loss, then Σg² and finite flag of three gradients: ‖g‖ = 5
    assert.ok(near(await ctrl([0.7, 9, 1, 16, 1, 0, 1], 0, 1), [1 / (5 + 1e-6), 1]));
    assert.ok(near(await ctrl([0.7, 9, 1, 16, 1, 0, 1], 0, 10), [1, 1]), 'below the threshold: no scaling');
    assert.ok(near(await ctrl([0.7, 9, 1, 16, 1, 0, 1], 0, 0), [1, 1]), 'maxNorm 0: no clipping');
    assert.deepEqual(await ctrl([NaN, 9, 1], 0, 1), [0, 0], 'a NaN loss');
    assert.deepEqual(await ctrl([0.7, 9, 1, 4, 0], 0, 1), [0, 0], 'a gradient with a NaN or Inf');
    assert.deepEqual(await ctrl([0.7, 3e38, 1, 3e38, 1], 0, 1), [0, 0], 'Σg² beyond float32: the host redoes it in float64');
    // with the device check's four counts: bad ids, bad mask, bad labels, labels to learn
    assert.ok(near(await ctrl([0.7, 0, 0, 0, 12, 9, 1], 4, 1), [1 / (3 + 1e-6), 1]));
    assert.deepEqual(await ctrl([0.7, 0, 0, 1, 12, 9, 1], 4, 1), [0, 0], 'a bad label');
    assert.deepEqual(await ctrl([0.7, 0, 0, 0, 0, 9, 1], 4, 1), [0, 0], 'nothing to learn');
  });

  it('AdamW with a device control: [s, 1] is gscale s; [s, 0] leaves p, m and v; one tensor and many', async (t) => {
    if (skip) return t.skip(skip);
    const h = { decay: 1 - 1e-3 * 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3 / (1 - 0.9 ** 3), sqrtBc2: Math.sqrt(1 - 0.999 ** 3) };
    const items = [7, 300, 1, 40].map((n, k) => ({ p: tf.tensor1d(randn(n, 10 + k)), g: tf.tensor1d(randn(n, 20 + k)), m: tf.tensor1d(randn(n, 30 + k, 0.1)), v: tf.tensor1d(randn(n, 40 + k, 0.01).map(Math.abs)) }));
    const on = tf.tensor1d([0.3, 1]), off = tf.tensor1d([0.3, 0]);
    const worst = async (a: tf.Tensor[], b: tf.Tensor[]) => {
      let w = 0;
      for (let j = 0; j < a.length; j++) { const [x, y] = [await a[j].data(), await b[j].data()]; for (let i = 0; i < x.length; i++) w = Math.max(w, Math.abs(x[i] - y[i])); }
      return w;
    };
    // the single-tensor kernel through ops (one adamwUpdate a tensor), the multi-tensor one directly (its switch is read once)
    const want = items.map(({ p, g, m, v }) => adamwUpdate(p, g, m, v, { ...h, gscale: 0.3 }));
    const forms: Array<[string, (hh: object) => tf.Tensor[][]]> = [
      ['one tensor', (hh) => items.map(({ p, g, m, v }) => adamwUpdate(p, g, m, v, hh as never))],
      ['many', (hh) => wops.adamwMany(items, hh as never)],
    ];
    for (const [form, via] of forms) {
      const got = via({ ...h, gscale: 99, ctrl: on });
      const kept = via({ ...h, gscale: 99, ctrl: off });
      for (let i = 0; i < items.length; i++) {
        assert.ok(await worst(want[i], got[i]) <= 1e-6, `${form}, tensor ${i}: [0.3, 1] is not gscale 0.3`);
        const { p, m, v } = items[i];
        assert.equal(await worst([p, m, v], kept[i]), 0, `${form}, tensor ${i}: [0.3, 0] changed p, m or v`);
      }
      tf.dispose([...got.flat(), ...kept.flat()]);
    }
    tf.dispose(want.flat());
    tf.dispose([on, off, ...items.flatMap((x) => [x.p, x.g, x.m, x.v])]);
  });
});
