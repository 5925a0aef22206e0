/**
 * Split-K GEMM (src/backend/webgpu/splitk.ts): the partial products and the
 * reduce with its epilogue against tf.matMul + bias + s·U·V on the cpu
 * backend, on unaligned (scalar) and aligned (vec4) shapes, both transposes,
 * a K that does not divide evenly; and the split rule on GPT-2 small's shapes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { splitCount, splitStats } from '../../src/backend/webgpu/splitk.js';
import { epilogueDisagreements, randn, relErr, releaseGPU, webgpuUnavailable } from './helpers.js';
import { gpuHealth } from '../../src/backend/webgpu/errors.js';
import { webgpuBackend } from '../../src/backend/webgpu/dispatch.js';
// split-K is on by default; set here so an environment that turned it off still tests the kernels
process.env.SHARELORA_GEMM_SPLITK = '1';
// the wave rule splits GPT-2's N = 768 products on 128×128; the default (efficiency) rule gives them 64×64 unsplit
process.env.SHARELORA_GEMM_RULE = 'wave';
process.env.SHARELORA_GEMM_PRETRANSPOSE ??= '4096';

let skip: string | undefined;

describe('split-K GEMM', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP split-K tests: ${skip}`); });
  after(() => releaseGPU());

  it('splits only products whose 128×128 tiles leave SMs idle, with at least 512 of K per split', () => {
    const tiles = (M: number, N: number) => Math.ceil(M / 128) * Math.ceil(N / 128);
    // GPT-2 small, 2048 tokens: c_proj forward (K 3072) and the c_fc / c_attn dX (K 3072 / 2304): 96 tiles on 132 SMs
    assert.equal(splitCount(2048, 768, 3072, tiles(2048, 768), 132), 4);
    assert.equal(splitCount(2048, 768, 2304, tiles(2048, 768), 132), 4);
    // GPT-2 medium's N = 1024 makes 128 tiles: nearly a wave, nothing to gain; large's N = 1280 (160 tiles) splits
    assert.equal(splitCount(2048, 1024, 4096, tiles(2048, 1024), 132), 1);
    assert.ok(splitCount(2048, 1280, 5120, tiles(2048, 1280), 132) > 1);
    // K 768 is too short to split; c_attn forward (288 tiles) and c_fc forward (384) fill the GPU already
    assert.equal(splitCount(2048, 768, 768, tiles(2048, 768), 132), 1);
    assert.equal(splitCount(2048, 2304, 768, tiles(2048, 2304), 132), 1);
    assert.equal(splitCount(2048, 3072, 768, tiles(2048, 3072), 132), 1);
    // notebook scale (4096 tokens, 256 wide): too little work for the extra launch
    assert.equal(splitCount(4096, 256, 1024, tiles(4096, 256), 132), 1);
    // two resident workgroups an SM (SHARELORA_GEMM_OCCUPANCY=2: 264 a round): five slices (480 workgroups, two rounds
    // of K/5) beat four (two rounds of K/4), where one a SM made four the best (three rounds of K/4 against one of K)
    assert.equal(splitCount(2048, 768, 3072, tiles(2048, 768), 2 * 132), 5);
  });

  it('weight gradients of full training (few 128×128 tiles over the batch\'s tokens) split into up to 32 slices', () => {
    // the 12-layer pretraining model at 64 × 256 tokens (K = 16,384): c_attn 256 × 768 (12 tiles), attn.c_proj 256 × 256
    // (4), mlp.c_fc 256 × 1024 (16); each fills about a wave of 132 SMs once split
    assert.equal(splitCount(256, 768, 16384, 12, 132, { few: true }), 11);
    assert.equal(splitCount(256, 256, 16384, 4, 132, { few: true }), 32);
    assert.equal(splitCount(256, 1024, 16384, 16, 132, { few: true }), 8);
    // without `few`, the 256 × 256 one is under MIN_WORK, and no product takes more than 16 slices
    assert.equal(splitCount(256, 256, 16384, 4, 132), 1);
    assert.equal(splitCount(256, 768, 16384, 12, 132), 11);
    assert.equal(splitCount(512, 512, 16384, 16, 132), 8);
    // 512 of K per slice at least: 4,096 tokens allow 8
    assert.equal(splitCount(256, 256, 4096, 4, 132, { few: true }), 8);
  });

  it('agrees with tf.matMul (+ bias + s·U·V) for forced splits on the 32×32 tile', async (t) => {
    if (skip) return t.skip(skip);
    // M, N, K, transA, transB, tile, splits, epilogue
    assert.deepEqual(await epilogueDisagreements([
      [67, 45, 1000, false, false, '32x32', 3, ''], [67, 45, 1000, true, true, '32x32', 4, 'bias'],
      [64, 128, 520, false, true, '32x32', 2, 'lrT'], [96, 64, 700, true, false, '32x32', 5, 'lrN+bias'],
      // a rank that is a multiple of 4 on rows of a multiple of 4: the reduce's vec4 reads of U and V, both layouts
      [67, 132, 600, false, true, '32x32', 2, 'lrT', 8], [70, 68, 700, true, false, '32x32', 3, 'lrN+bias', 4],
    ]), []);
  });

  it('asks for no more K-slices than one buffer of partials the device can bind', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    const limit = webgpuBackend().device.limits.maxStorageBufferBindingSize;
    // 16 slices of a product whose [M, N] output is over a 16th of the limit: its [16, M, N] partials would not bind
    // (lavapipe: 128 MiB, so 1,024 × 4,096 × 4 bytes = 16 MiB a slice; on larger limits the output grows to match)
    const M = 1024, N = Math.max(4096, Math.ceil(limit / 16 / 4 / M / 64 + 1) * 64), K = 256;
    if (M * N * 4 > limit / 2) return t.skip(`${M} x ${N} is too large a product for this test on this device`);
    const a = randn(M * K, 41), b = randn(K * N, 42);
    const before = (await gpuHealth(webgpuBackend())).errors;
    // the split one first: a pooled buffer of the unsplit answer must not stand in for a dispatch that never ran
    const split = await (tf.engine().runKernel('ShareLoraMatMul', { a: tf.tensor(a, [M, K]), b: tf.tensor(b, [K, N]) }, { transA: false, transB: false, tile: '32x32', splitK: 16 } as never) as tf.Tensor).data();
    const whole = await (tf.engine().runKernel('ShareLoraMatMul', { a: tf.tensor(a, [M, K]), b: tf.tensor(b, [K, N]) }, { transA: false, transB: false, tile: '32x32', splitK: 1 } as never) as tf.Tensor).data();
    assert.equal((await gpuHealth(webgpuBackend())).errors, before, 'no GPU validation error');
    assert.ok(relErr(split, whole) < 1e-5, `rel err ${relErr(split, whole)}`);
  });

  it('the tile rule splits a GPT-2-sized dX on 128×128, on the transposed weight and on its frozen copy alike', async (t) => {
    if (skip) return t.skip(skip);
    // dy [2048, 2304] · Wᵀ, W [768, 2304]: GPT-2 small's c_attn dX, 96 tiles of 128×128 → S = 4
    const M = 2048, N = 768, K = 2304;
    assert.equal(splitCount(M, N, K, 96, 132), 4);
    await tf.setBackend('webgpu');
    const dy = tf.tensor(randn(M * K, 11), [M, K]), W = tf.tensor(randn(N * K, 12, 0.05), [N, K]);
    const run = (splitK?: number) => tf.engine().runKernel('ShareLoraMatMul', { a: dy, b: W }, { transB: true, ...(splitK ? { splitK } : {}) } as never) as tf.Tensor;
    const before = splitStats.products;
    const split = await run().data(); // W read along K, split
    const splitCopy = await run().data(); // second use: the frozen copy, read along rows, split
    const whole = await run(1).data(); // the copy, unsplit
    assert.equal(splitStats.products - before, 2, 'the first two products were split');
    // a slice of rows against the cpu backend: the unsplit 128×128 path is the tile tests' reference
    await tf.setBackend('cpu');
    const rows = 64;
    const want = await tf.matMul(tf.tensor(randn(M * K, 11).subarray(0, rows * K), [rows, K]), tf.tensor(randn(N * K, 12, 0.05), [N, K]), false, true).data();
    await tf.setBackend('webgpu');
    assert.ok(relErr(whole.subarray(0, rows * N), want) < 1e-5, 'unsplit on the copy against cpu');
    assert.ok(relErr(split, whole) < 1e-5, `split on W: rel err ${relErr(split, whole)}`);
    assert.ok(relErr(splitCopy, whole) < 1e-5, `split on the copy: rel err ${relErr(splitCopy, whole)}`);
    tf.dispose([dy, W]);
  });

  it('a weight gradient xᵀ·dy (256 × 256 over 4,096 tokens) the rule gave 32×32 runs split on 128×128', async (t) => {
    if (skip) return t.skip(skip);
    const M = 256, N = 256, K = 4096;
    const x = randn(K * M, 15), dy = randn(K * N, 16, 0.05);
    await tf.setBackend('webgpu');
    const before = splitStats.products;
    const got = await (tf.matMul(tf.tensor(x, [K, M]), tf.tensor(dy, [K, N]), true, false) as tf.Tensor).data();
    assert.equal(splitStats.products - before, 1, 'split');
    await tf.setBackend('cpu');
    // the first 32 rows of xᵀ·dy are the first 32 columns of x against dy
    const cols = 32;
    const want = await tf.matMul(tf.slice(tf.tensor(x, [K, M]), [0, 0], [K, cols]), tf.tensor(dy, [K, N]), true, false).data();
    await tf.setBackend('webgpu');
    const e = relErr(got.subarray(0, cols * N), want);
    assert.ok(e < 1e-5, `rel err ${e}`);
  });

  it('a long-K product the rule gave 64×64 (as the LM head\'s dX) runs split on 128×128', async (t) => {
    if (skip) return t.skip(skip);
    // the LM head's dX is dlogits [2048, V] · Wte [V, 768]; K = 4,101 keeps lavapipe's time down and the
    // row length unaligned (scalar loads of A), as the vocabulary's is
    const M = 2048, N = 768, K = 4101;
    assert.equal(splitCount(2048, 768, 50257, 96, 132), 11);
    assert.ok(splitCount(M, N, K, 96, 132) > 1);
    const a = randn(M * K, 13), b = randn(K * N, 14, 0.05);
    await tf.setBackend('webgpu');
    const before = splitStats.products;
    const got = await (tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N])) as tf.Tensor).data();
    assert.equal(splitStats.products - before, 1, 'split');
    await tf.setBackend('cpu');
    const rows = 32;
    const want = await tf.matMul(tf.tensor(a.subarray(0, rows * K), [rows, K]), tf.tensor(b, [K, N])).data();
    await tf.setBackend('webgpu');
    const e = relErr(got.subarray(0, rows * N), want);
    assert.ok(e < 1e-5, `rel err ${e}`);
  });
});
