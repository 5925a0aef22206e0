/**
 * The flash-style attention forward (src/backend/webgpu/flash.ts) against
 * the tfjs-core reference on the cpu backend, on sequences longer than one
 * query block (64) and one key block (32), so the online softmax crosses
 * blocks and causal skipping happens: outputs, and every gradient (the
 * backward rebuilds the softmax from the LSE this kernel writes).
 */
import { after, before, describe, it } from 'node:test';
import { checkAgainstCpu, checkAttentionCase, releaseGPU, webgpuUnavailable, type AttentionCase } from './helpers.js';

process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

describe('flash attention forward', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP flash attention tests: ${skip}`); });
  after(() => releaseGPU());

  it('matches the reference across query and key blocks: causal, key mask, GQA, packed', async (t) => {
    if (skip) return t.skip(skip);
    // B, H, Hkv, T, D, causal, masked
    const configs: AttentionCase[] = [
      [2, 2, 2, 100, 16, true, false],
      [1, 4, 2, 70, 8, true, true],
      [2, 2, 1, 67, 4, false, true],
      [1, 2, 2, 130, 64, true, false],
    ];
    for (const c of configs) await checkAttentionCase(checkAgainstCpu, c, 31);
  });
});
