/**
 * The cap on tfjs's webgpu buffer pool (src/backend/webgpu/pool.ts): tfjs
 * keeps a freed buffer for its exact size forever, so work whose shapes vary
 * (length-bucketed batches, decoding one token longer each step) grew a
 * process's GPU memory without bound. Two "runs" of such work must leave the
 * pool at the cap, not at the sum of every shape seen; a size asked for every
 * step keeps being reused; results stay right.
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
    setPoolCap(4 * MiB);
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
});
