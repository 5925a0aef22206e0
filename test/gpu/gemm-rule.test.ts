/**
 * SHARELORA_GEMM_RULE=waves2 (src/backend/webgpu/gemm.ts): 128×128 tiles only where they make two waves
 * on the GPU's 132 SMs, else 64×64; the long-K split of the LM head's dX unchanged. The choices on the
 * shapes of GPT-2 small and of the notebooks, and one product through the rule against tf.matMul.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseTile, nameOfTile } from '../../src/backend/webgpu/index.js';
import { assertUnsplitMatMulAgrees, releaseGPU, webgpuUnavailable } from './helpers.js';
// read once per process: this file is its own process under node --test
process.env.SHARELORA_GEMM_RULE = 'waves2';
process.env.SHARELORA_GEMM_SPLITK = '1';
delete process.env.SHARELORA_GEMM_TILE;
delete process.env.SHARELORA_GPU_SMS;

let skip: string | undefined;

describe('the two-wave tile rule (SHARELORA_GEMM_RULE=waves2)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP two-wave tile rule product: ${skip}`); });
  after(() => releaseGPU());

  it('picks 64×64 where 128×128 makes under two waves, and keeps 128×128 and the long-K path elsewhere', () => {
    const tile = (M: number, N: number, K: number) => nameOfTile(chooseTile(M, N, 1, K));
    // GPT-2 small, 2048 tokens: every N = 768 product (96 tiles of 128×128) goes to 64×64
    assert.equal(tile(2048, 768, 768), '64x64t4');
    assert.equal(tile(2048, 768, 3072), '64x64t4');
    assert.equal(tile(2048, 768, 2304), '64x64t4');
    // c_attn and c_fc forward (288 and 384 tiles: two waves or more) stay on 128×128, so does the LM head forward
    assert.equal(tile(2048, 2304, 768), '128x128');
    assert.equal(tile(2048, 3072, 768), '128x128');
    assert.equal(tile(2048, 50257, 768), '128x128');
    // the LM head's dX (K = vocabulary) keeps its 64×64 choice, which gemm() then splits on 128×128
    assert.equal(tile(2048, 768, 50257), '64x64t4');
    // notebook scale, 4096 tokens, 256 wide: c_attn (192 tiles) and c_fc (256) forward now on 64×64
    assert.equal(tile(4096, 768, 256), '64x64t4');
    assert.equal(tile(4096, 1024, 256), '64x64t4');
    // small products as before
    assert.equal(tile(256, 256, 64), '32x32');
  });

  it('a product the rule now gives 64×64 agrees with tf.matMul, unsplit', async (t) => {
    if (skip) return t.skip(skip);
    // 96 tiles of 128×128, where the wave rule takes 128×128; K short for lavapipe
    const M = 2048, N = 768, K = 200;
    assert.equal(nameOfTile(chooseTile(M, N, 1, K)), '64x64t4');
    await assertUnsplitMatMulAgrees(M, N, K, 21);
  });
});
