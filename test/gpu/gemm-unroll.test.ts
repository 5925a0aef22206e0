/**
 * SHARELORA_GEMM_UNROLL=1 (src/backend/webgpu/gemm.ts): the library's tiles with the K loop written
 * out and 128×128 double-buffered, against tf.matMul (+ bias + s·U·V) on the cpu backend: every tile,
 * both transposes, unaligned shapes, the epilogues, and a split-K partial (single-buffered, unrolled).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gemmBody } from '../../src/backend/webgpu/gemm.js';
import { randn, relErr, releaseGPU, tileDisagreements, webgpuUnavailable } from './helpers.js';
// read once per process: this file is its own process under node --test
process.env.SHARELORA_GEMM_UNROLL = '1';

let skip: string | undefined;

describe('GEMM with the K loop unrolled (SHARELORA_GEMM_UNROLL=1)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP unrolled GEMM tests: ${skip}`); });
  after(() => releaseGPU());

  it('the unrolled source has no loop over the K-slice or over a vec4\'s components', () => {
    const o = { transA: false, transB: false, vecA: false, vecB: true, vecC: false, bias: true, lowRank: 'T' as const };
    const tile = { BM: 128, BN: 128, BK: 16, TM: 8 as const, TN: 8 as const };
    const rolled = gemmBody(tile, o), unrolled = gemmBody({ ...tile, un: true }, o), both = gemmBody({ ...tile, un: true, db: true }, o);
    assert.match(rolled, /for \(var kk = 0u/);
    for (const src of [unrolled, both]) {
      assert.doesNotMatch(src, /for \(var kk/);
      assert.doesNotMatch(src, /for \(var c /);
      // the 16 steps, each reading A at its own constant offset
      for (let kk = 0; kk < 16; kk++) assert.ok(src.includes(`As[sa0 + ${kk}u * 32u`), `step ${kk}`);
    }
  });

  it('every library tile agrees with tf.matMul on awkward shapes', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await tileDisagreements(['128x128', '64x64t4', '32x32']), []);
  });

  it('the epilogues (bias, s·U·V) and a split-K partial agree with tf.matMul + bias + s·U·V', async (t) => {
    if (skip) return t.skip(skip);
    const bad: string[] = [];
    // M, N, K, transA, transB, tile, splits (1: none), epilogue
    const cases = [
      [150, 136, 200, false, false, '128x128', 1, 'bias'], [131, 67, 90, true, true, '128x128', 1, 'lrT'],
      [70, 132, 300, false, true, '64x64t4', 1, 'lrN+bias'], [67, 45, 1000, true, false, '128x128', 3, 'lrT+bias'],
    ] as const;
    for (const [M, N, K, ta, tb, tile, S, epi] of cases) {
      const r = 3, s = 0.7;
      const a = randn(M * K, M + K), b = randn(K * N, N), bias = randn(N, 5), u = randn(M * r, 6), v = randn(N * r, 7);
      const aShape = ta ? [K, M] : [M, K], bShape = tb ? [N, K] : [K, N];
      const vT = epi.startsWith('lrT');
      await tf.setBackend('cpu');
      let want = tf.mul(tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb), 0.5);
      if (epi.includes('bias')) want = tf.add(want, tf.tensor(bias, [N]));
      if (epi.startsWith('lr')) want = tf.add(want, tf.mul(tf.matMul(tf.tensor(u, [M, r]), tf.tensor(v, vT ? [N, r] : [r, N]), false, vT), s));
      const wantData = await want.data();
      await tf.setBackend('webgpu');
      const inputs: Record<string, tf.Tensor> = { a: tf.tensor(a, aShape), b: tf.tensor(b, bShape) };
      if (epi.includes('bias')) inputs.bias = tf.tensor(bias, [N]);
      if (epi.startsWith('lr')) { inputs.u = tf.tensor(u, [M, r]); inputs.v = tf.tensor(v, vT ? [N, r] : [r, N]); }
      const got = tf.engine().runKernel('ShareLoraMatMul', inputs, { transA: ta, transB: tb, alpha: 0.5, tile, splitK: S, lrScale: s, lrVT: vT } as never) as tf.Tensor;
      const e = relErr(await got.data(), wantData);
      if (!(e < 1e-5)) bad.push(`${tile} ${M}x${N}x${K} ${ta}${tb} S=${S} ${epi}: rel err ${e}`);
    }
    assert.deepEqual(bad, []);
  });
});
