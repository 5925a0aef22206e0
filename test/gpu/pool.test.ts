/**
 * The cap on tfjs's webgpu buffer pool (src/backend/webgpu/pool.ts): tfjs
 * keeps a freed buffer for its exact size forever, so work whose shapes vary
 * (length-bucketed batches, decoding one token longer each step) grew a
 * process's GPU memory without bound. Two "runs" of such work must leave the
 * pool at the cap, not at the sum of every shape seen; a size asked for every
 * step keeps being reused; results stay right. A working set larger than
 * the cap that every step asks for again is kept whole, not destroyed and
 * re-created each step (that churn cost GPT-2 small a third of its speed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { poolStats, setPoolCap } from '../../src/backend/webgpu/pool.js';
import { releaseGPU, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;
const MiB = 2 ** 20;
const allocated = () => (tf.memory() as unknown as { numBytesAllocatedInGPU: number }).numBytesAllocatedInGPU;

/** one "run": a step of a fixed shape (the hot size) and one whose length changes every time, as bucketed batches do */
async function run(lengths: number[]): Promise<number> {
  let sum = 0;
  for (const T of lengths) {
    const y = tf.tidy(() => {
      const hot = tf.add(tf.fill([32, 1000], 1), 1);            // 125 KiB, every step
      const varying = tf.mul(tf.fill([T, 1024], 2), 3);         // T × 4 KiB, a new size each step (a step's buffers stay under the cap)
      return tf.add(tf.sum(hot), tf.sum(varying));
    });
    sum += (await y.data())[0]!;
    y.dispose();
  }
  return sum;
}

describe('webgpu buffer pool cap', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP pool tests: ${skip}`); });
  after(() => { setPoolCap(undefined); releaseGPU(); });

  it('two runs of varying shapes leave the pool at the cap; the hot size is reused; sums are right', async (t) => {
    if (skip) return t.skip(skip);
    setPoolCap(4 * MiB, 16);   // a window of ~2 steps: the varying sizes age out within the run
    const first = Array.from({ length: 40 }, (_, i) => 64 + i), second = Array.from({ length: 40 }, (_, i) => 128 + i);
    const tensors0 = tf.memory().numTensors;
    const a = await run(first);
    const afterFirst = allocated();
    const b = await run(second);
    const afterSecond = allocated();
    // every step's two sums, exactly (small integers in float32)
    assert.equal(a, first.reduce((s, T) => s + 32 * 1000 * 2 + T * 1024 * 6, 0));
    assert.equal(b, second.reduce((s, T) => s + 32 * 1000 * 2 + T * 1024 * 6, 0));
    assert.equal(tf.memory().numTensors, tensors0, 'no tensor left behind');
    // uncapped, the first run alone keeps 2 · Σ T·4 KiB ≈ 26 MiB of its varying buffers, the second ≈ 46 MiB more
    const inUse = (tf.memory() as unknown as { numBytesInGPU: number }).numBytesInGPU;
    assert.ok(afterFirst - inUse <= 4 * MiB, `after the first run the pool holds ${((afterFirst - inUse) / MiB).toFixed(1)} MiB free, cap 4`);
    assert.ok(afterSecond - inUse <= 4 * MiB, `after the second run the pool holds ${((afterSecond - inUse) / MiB).toFixed(1)} MiB free, cap 4`);
    assert.ok(poolStats.destroyed > 0, 'buffers beyond the cap were destroyed');
    // the hot size survives the trims: a step of it allocates nothing new
    const before2 = allocated();
    const y = tf.tidy(() => tf.sum(tf.add(tf.fill([32, 1000], 1), 1)));
    await y.data();
    y.dispose();
    assert.ok(allocated() <= before2, 'the size asked for every step came from the pool');
  });
  it('a working set larger than the cap, asked for every step, is kept; with no protection window it churns', async (t) => {
    if (skip) return t.skip(skip);
    // eight 0.5-2.25 MiB inputs and as many outputs a step, ~22 MiB freed at the end of each
    const step = async () => {
      const y = tf.tidy(() => tf.addN(Array.from({ length: 8 }, (_, i) => tf.sum(tf.mul(tf.fill([128 + 64 * i, 1024], 1), 2)))));
      const v = (await y.data())[0]!;
      y.dispose();
      return v;
    };
    const expected = Array.from({ length: 8 }, (_, i) => (128 + 64 * i) * 1024 * 2).reduce((a, b) => a + b, 0);
    setPoolCap(8 * MiB);   // ~22 MiB freed a step: above the cap, below four times it (where even recent sizes go)
    assert.equal(await step(), expected);
    const destroyed0 = poolStats.destroyed, allocated0 = allocated();
    for (let i = 0; i < 5; i++) assert.equal(await step(), expected);
    assert.equal(poolStats.destroyed, destroyed0, 'no buffer of the repeated working set was destroyed');
    assert.ok(allocated() <= allocated0, 'the repeated steps allocated nothing new');
    setPoolCap(8 * MiB, 0);   // the cap alone (the 2048-MiB default of before): every step's buffers are destroyed and made again
    for (let i = 0; i < 3; i++) assert.equal(await step(), expected);
    assert.ok(poolStats.destroyed > destroyed0, 'without the window the same steps destroy buffers');
    // past four times the cap, recent sizes go too: the pool's free bytes stay under it
    setPoolCap(1 * MiB);
    for (let i = 0; i < 2; i++) assert.equal(await step(), expected);
    const inUse = (tf.memory() as unknown as { numBytesInGPU: number }).numBytesInGPU;
    assert.ok(allocated() - inUse <= 4 * MiB, `free ${((allocated() - inUse) / MiB).toFixed(1)} MiB, hard limit 4`);
  });
});
