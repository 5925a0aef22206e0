/**
 * SHARELORA_GEMM_RULE=efficiency (src/backend/webgpu/gemm.ts): 128×128 (split or not) or 64×64 by the fill of
 * their last wave and the rates of the session-12 H100 sweep. On GPT-2 small's and the notebooks' products it
 * must pick what that sweep measured faster of the two (bench/NOTES.md entry 31), and a product it moves to
 * 64×64 must still agree with tf.matMul.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseTile, nameOfTile } from '../../src/backend/webgpu/index.js';
import { assertUnsplitMatMulAgrees, releaseGPU, webgpuUnavailable } from './helpers.js';
// read once per process: this file is its own process under node --test
process.env.SHARELORA_GEMM_RULE = 'efficiency';
process.env.SHARELORA_GEMM_SPLITK = '1';
delete process.env.SHARELORA_GEMM_TILE;
delete process.env.SHARELORA_GPU_SMS;
delete process.env.SHARELORA_GEMM_OCCUPANCY;

let skip: string | undefined;

describe('the wave-fill tile rule (SHARELORA_GEMM_RULE=efficiency)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP wave-fill tile rule product: ${skip}`); });
  after(() => releaseGPU());

  it('picks the tile the H100 sweep measured faster, product by product', () => {
    const tile = (M: number, N: number, K: number, batch = 1) => nameOfTile(chooseTile(M, N, batch, K));
    // GPT-2 small, 2048 tokens (sweep TFLOP/s, the library's 128×128 choice against 64×64):
    // c_attn forward, 288 tiles, 2.2 waves: 23.0 against 25.8
    assert.equal(tile(2048, 2304, 768), '64x64t4');
    // the N = 768 products, 96 tiles: attn.c_proj 19.2 against 23.9; c_attn dX, c_fc dX, mlp.c_proj forward
    // (split in four on 128×128) 23.6–24.1 against 25.1–25.4
    assert.equal(tile(2048, 768, 768), '64x64t4');
    assert.equal(tile(2048, 768, 2304), '64x64t4');
    assert.equal(tile(2048, 768, 3072), '64x64t4');
    // c_fc forward and mlp.c_proj dX, 384 tiles: 28.3 and 28.0 against 26.2; the LM head forward: 30.8 against 27.2
    assert.equal(tile(2048, 3072, 768), '128x128');
    assert.equal(tile(2048, 50257, 768), '128x128');
    // the LM head's dX (K = vocabulary) keeps the long-K path: 64×64 here, split on 128×128 by gemm()
    assert.equal(tile(2048, 768, 50257), '64x64t4');
    // attention's scores, 96 heads of 256 × 256 (384 tiles): 16.3 on both; 128×128 kept
    assert.equal(tile(256, 256, 64, 96), '128x128');
    // notebook scale, 4096 tokens, 256 wide: c_attn forward (192 tiles) 21.5 against 22.7; c_fc forward (256 tiles,
    // 97% of a wave) 29.2 against 23.7 stays, where the two-wave rule moved it
    assert.equal(tile(4096, 768, 256), '64x64t4');
    assert.equal(tile(4096, 1024, 256), '128x128');
    assert.equal(tile(4096, 8257, 256), '128x128');
    // small products as before
    assert.equal(tile(256, 256, 64), '32x32');
  });

  it('a product the rule moves to 64×64 agrees with tf.matMul, unsplit', async (t) => {
    if (skip) return t.skip(skip);
    // 96 tiles of 128×128 (the wave rule's choice); K short for lavapipe
    const M = 2048, N = 768, K = 200;
    assert.equal(nameOfTile(chooseTile(M, N, 1, K)), '64x64t4');
    await assertUnsplitMatMulAgrees(M, N, K, 31);
  });
});
