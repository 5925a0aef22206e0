/**
 * SHARELORA_GEMM_UNROLL=0 (src/backend/webgpu/gemm.ts): the opt-out since the unrolled K loop became the
 * default (bench/NOTES.md "22 and 23, measured"). The library's tiles with the K loop as a WGSL loop,
 * single-buffered, against tf.matMul (+ bias + s·U·V) on the cpu backend, so the path a user can switch
 * back to stays tested.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flags } from '../../src/backend/flags.js';
import { epilogueDisagreements, LIBRARY_TILES, releaseGPU, STAGING_EPILOGUE_CASES, tileDisagreements, webgpuUnavailable } from './helpers.js';
// read once per process: this file is its own process under node --test
process.env.SHARELORA_GEMM_UNROLL = '0';

let skip: string | undefined;

describe('GEMM with the K loop rolled (SHARELORA_GEMM_UNROLL=0)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP rolled GEMM tests: ${skip}`); });
  after(() => releaseGPU());

  it('the switch reads off', () => assert.equal(flags.gemmUnroll, false));

  it('every library tile agrees with tf.matMul on awkward shapes', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await tileDisagreements(LIBRARY_TILES), []);
  });

  it('the epilogues (bias, s·U·V) and a split-K partial agree with tf.matMul + bias + s·U·V', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await epilogueDisagreements(STAGING_EPILOGUE_CASES), []);
  });
});
