/**
 * AdamW written into p, m and v (src/backend/webgpu/optim.ts adamwInPlaceKernel, ops.adamwApply; on by default,
 * SHARELORA_WEBGPU_ADAMW_INPLACE=0 turns it off) against the out-of-place kernel it replaces: the same values
 * over several steps with changing hyperparameters, the same tensors afterwards (no new ones, the variables keep
 * their buffers), a clone of a parameter left as it was, no stale value from a read made before the update, and a
 * pipelined step's device-side control (apply or keep). Then two Trainers, one each way, over the same batches.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';

const ops = await import('../../src/backend/ops.js');
const { randn, releaseGPU, webgpuUnavailable, spamLikeBatches } = await import('./helpers.js');
const { withEnv } = await import('../helpers.js');
const { injectShareLoRA, randomModel, Trainer } = await import('../../src/index.js');

let skip: string | undefined;
const SHAPES = [[37], [8, 33], [257, 3], [1], [300]];

type Item = { p: tf.Variable; g: tf.Tensor; m: tf.Variable; v: tf.Variable };
const n = (s: number[]) => s.reduce((a, b) => a * b, 1);

// tidy frees the tensor each variable was made from, which would otherwise share its buffer (and keep it out of place)
const variable = (data: Float32Array, s: number[]) => tf.tidy(() => tf.variable(tf.tensor(data, s)));

function makeItems(seed: number): Item[] {
  return SHAPES.map((s, k) => ({
    p: variable(randn(n(s), seed + k), s),
    g: tf.tensor(randn(n(s), seed + 100 + k), s),
    m: variable(randn(n(s), seed + 200 + k, 0.1), s),
    v: variable(Float32Array.from(randn(n(s), seed + 300 + k, 0.01), (x) => x * x), s),
  }));
}

const hyper = (t: number, gscale: number) => ({
  decay: 1 - 1e-3 * 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3 / (1 - 0.9 ** t), sqrtBc2: Math.sqrt(1 - 0.999 ** t), gscale,
});

/** every item's p, m, v after `steps` updates, each way */
async function updated(inPlace: boolean, steps: number, seed: number): Promise<Float32Array[]> {
  const items = makeItems(seed);
  for (let t = 1; t <= steps; t++) {
    const h = hyper(t, 0.5 + 0.1 * t);
    const assign = (i: number, next: tf.Tensor[]) => {
      assert.ok(!inPlace, 'in place, no item takes the out-of-place path');
      items[i].p.assign(next[0]); items[i].m.assign(next[1]); items[i].v.assign(next[2]); tf.dispose(next);
    };
    withEnv('SHARELORA_WEBGPU_ADAMW_INPLACE', inPlace ? '1' : '0', () => ops.adamwApply(items, h, assign));
  }
  const out = await Promise.all(items.flatMap((it) => [it.p, it.m, it.v]).map(async (x) => await x.data() as Float32Array));
  tf.dispose(items.flatMap((it) => [it.p, it.g, it.m, it.v]));
  return out;
}

describe('AdamW in place (webgpu)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP adamw in-place tests: ${skip}`); });
  after(() => releaseGPU());

  it('gives the out-of-place kernel\'s p, m and v over three steps with changing step sizes and scales', async (t) => {
    if (skip) return t.skip(skip);
    const want = await updated(false, 3, 10);
    const got = await updated(true, 3, 10);
    // the same float32 operations in the same order; the hyperparameters come from a buffer instead of a uniform
    want.forEach((w, j) => assert.deepEqual(got[j], w, `item ${Math.floor(j / 3)} ${'pmv'[j % 3]}`));
  });

  it('writes into the variables: same buffers, no new tensors, and a read made before the update is not answered again', async (t) => {
    if (skip) return t.skip(skip);
    const items = makeItems(20);
    const before = await items[0].p.data() as Float32Array;
    const ids = items.map((it) => [it.p.dataId, it.m.dataId, it.v.dataId]);
    ops.adamwApply(items, hyper(1, 1), () => { throw new Error('no item should take the out-of-place path'); });
    const tensors = tf.memory().numTensors;
    ops.adamwApply(items, hyper(2, 1), () => { throw new Error('no item should take the out-of-place path'); });
    assert.equal(tf.memory().numTensors, tensors, 'an update in place makes no tensor');
    items.forEach((it, k) => assert.deepEqual([it.p.dataId, it.m.dataId, it.v.dataId], ids[k], `item ${k} keeps its buffers`));
    const after = await items[0].p.data() as Float32Array;
    assert.notDeepEqual(after, before, 'the read after the update sees the update');
    tf.dispose(items.flatMap((it) => [it.p, it.g, it.m, it.v]));
  });

  it('leaves a parameter whose buffer a clone shares to the out-of-place path, and the clone unchanged', async (t) => {
    if (skip) return t.skip(skip);
    const items = makeItems(30);
    const snapshot = tf.clone(items[1].p);
    const was = await snapshot.data() as Float32Array;
    const outOfPlace: number[] = [];
    ops.adamwApply(items, hyper(1, 1), (i, next) => {
      outOfPlace.push(i);
      items[i].p.assign(next[0]); items[i].m.assign(next[1]); items[i].v.assign(next[2]);
      tf.dispose(next);
    });
    assert.deepEqual(outOfPlace, [1]);
    assert.deepEqual(await snapshot.data(), was, 'the clone keeps the old values');
    assert.notDeepEqual(await items[1].p.data(), was, 'the parameter moved');
    tf.dispose([snapshot, ...items.flatMap((it) => [it.p, it.g, it.m, it.v])]);
  });

  it('follows a device-side control: [scale, 1] as gscale = scale, [scale, 0] keeps p, m and v', async (t) => {
    if (skip) return t.skip(skip);
    const want = await updated(false, 1, 40);
    const items = makeItems(40);
    const start = await Promise.all(items.flatMap((it) => [it.p, it.m, it.v]).map(async (x) => await x.data() as Float32Array));
    const { gscale, ...h } = hyper(1, 0.6);
    const keep = tf.tensor1d([0.6, 0]);
    ops.adamwApply(items, { ...h, gscale: 1, ctrl: keep }, () => assert.fail('out of place'));
    const kept = await Promise.all(items.flatMap((it) => [it.p, it.m, it.v]).map(async (x) => await x.data() as Float32Array));
    kept.forEach((x, j) => assert.deepEqual(x, start[j], `ok = 0 changed item ${Math.floor(j / 3)} ${'pmv'[j % 3]}`));
    const apply = tf.tensor1d([0.6, 1]);
    ops.adamwApply(items, { ...h, gscale: 1, ctrl: apply }, () => assert.fail('out of place'));
    const got = await Promise.all(items.flatMap((it) => [it.p, it.m, it.v]).map(async (x) => await x.data() as Float32Array));
    got.forEach((x, j) => assert.deepEqual(x, want[j], `item ${Math.floor(j / 3)} ${'pmv'[j % 3]}`));
    assert.equal(gscale, 0.6);
    tf.dispose([keep, apply, ...items.flatMap((it) => [it.p, it.g, it.m, it.v])]);
  });

  it('drops the transposed copy a reshape of the parameter was given (frozen.ts), so a product after the update reads the new values', async (t) => {
    if (skip) return t.skip(skip);
    // a [128, 128] weight read transposed twice through a reshape (a plain tensor to frozen.ts: copied on the second)
    const w = variable(randn(128 * 128, 50, 0.1), [128, 128]);
    const x = tf.tensor(randn(130 * 128, 51), [130, 128]) as tf.Tensor2D;
    const viaAlias = () => tf.tidy(() => ops.linear(x, tf.reshape(w, [128, 128]) as tf.Tensor2D, undefined, true));
    tf.dispose([viaAlias(), viaAlias()]);
    const g = tf.tensor(randn(128 * 128, 52), [128, 128]);
    const m = variable(new Float32Array(128 * 128), [128, 128]), v = variable(new Float32Array(128 * 128), [128, 128]);
    ops.adamwApply([{ p: w, g, m, v }], hyper(1, 1), () => assert.fail('out of place'));
    const got = viaAlias();
    const fresh = tf.tidy(() => ops.linear(x, tf.mul(w, 1) as tf.Tensor2D, undefined, true));
    const [a, b] = [await got.data(), await fresh.data()];
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-4, `the product after the update differs from one with a fresh copy of the weight by ${worst}`);
    tf.dispose([w, x, g, m, v, got, fresh]);
  });

  it('trains a ShareA and a LoRA adapter to the same parameters and losses either way', async (t) => {
    if (skip) return t.skip(skip);
    const batches = spamLikeBatches(6, 2, 16, 7);
    for (const share of ['A', 'none'] as const) {
      const run = async (inPlace: string) => withEnv('SHARELORA_WEBGPU_ADAMW_INPLACE', inPlace, async () => {
        const model = randomModel({ model_type: 'gpt2', n_layer: 3, n_embd: 32, n_head: 4, vocab_size: 320, n_positions: 32 }, { seed: 3 });
        const adapter = injectShareLoRA(model, { r: 4, alpha: 8, targets: ['c_attn'], share, seed: 5 });
        const trainer = new Trainer(model, adapter, { lr: 5e-3, weightDecay: 0.01, maxGradNorm: 1 });
        const losses: number[] = [];
        let ids: object[] = [];
        for (const [i, b] of batches.entries()) {
          losses.push(await trainer.step({ inputIds: b.inputIds as number[][], labels: b.inputIds as number[][] }));
          if (i === 1) ids = [...adapter.namedParameters().values()].map((p) => p.dataId);
        }
        // from the second update on (the first may find a buffer shared with the tensor a parameter was made from)
        const kept = [...adapter.namedParameters().values()].every((p, k) => p.dataId === ids[k]);
        assert.equal(kept, inPlace === '1', `share ${share}, in place ${inPlace}: the parameters kept their buffers`);
        const params = await Promise.all([...adapter.namedParameters()].map(async ([k, p]) => [k, await p.data()] as const));
        trainer.dispose();
        model.dispose();
        return { losses, params };
      });
      const off = await run('0');
      const on = await run('1');
      assert.deepEqual(on.losses, off.losses, `share ${share}: losses`);
      assert.deepEqual(on.params, off.params, `share ${share}: parameters`);
    }
  });
});
