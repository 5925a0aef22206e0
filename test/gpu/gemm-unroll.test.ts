/**
 * SHARELORA_GEMM_UNROLL=1 (src/backend/webgpu/gemm.ts): the library's tiles with the K loop written
 * out and 128×128 double-buffered, against tf.matMul (+ bias + s·U·V) on the cpu backend: every tile,
 * both transposes, unaligned shapes, the epilogues, and a split-K partial (single-buffered, unrolled).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gemmBody } from '../../src/backend/webgpu/gemm.js';
import { epilogueDisagreements, LIBRARY_TILES, releaseGPU, STAGING_EPILOGUE_CASES, tileDisagreements, webgpuUnavailable } from './helpers.js';
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
    assert.deepEqual(await tileDisagreements(LIBRARY_TILES), []);
  });

  it('the epilogues (bias, s·U·V) and a split-K partial agree with tf.matMul + bias + s·U·V', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await epilogueDisagreements(STAGING_EPILOGUE_CASES), []);
  });
});
