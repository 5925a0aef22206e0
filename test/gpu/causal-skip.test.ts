/**
 * The causal attention backward without the work past the diagonal (src/backend/webgpu/attention.ts,
 * SHARELORA_WEBGPU_CAUSAL_SKIP, on by default): the scores and dP products leave out the tiles wholly past it, dQ
 * ends each row block's K loop at its last row, dK and dV start theirs at their first, and the row kernel writes
 * zeros there. Against the tfjs-core reference on the cpu backend, on sequences of several tiles with a ragged last
 * one, on the default 64-row tiles, on the tile the GEMM's plan picks (128 rows) and on a forced 32 × 32 (the
 * diagonal crosses many tiles).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { causalSkipStats } from '../../src/backend/webgpu/attention.js';
import { checkAgainstCpu, checkAttentionCase, releaseGPU, webgpuUnavailable, type AttentionCase } from './helpers.js';

let skip: string | undefined;

describe('causal attention backward, masked work left out', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP causal skip tests: ${skip}`); });
  after(() => { delete process.env.SHARELORA_GEMM_TILE; delete process.env.SHARELORA_WEBGPU_ATTENTION_TILE; releaseGPU(); });

  it('matches the reference gradients: several tiles, ragged, key mask, GQA, packed, rows', async (t) => {
    if (skip) return t.skip(skip);
    // B, H, Hkv, T, D, causal, masked; D = 6 keeps the flash kernels out (the backward under test is the default one)
    // (each tile's kernels compile cold on lavapipe in CI: two tiles, the plan's 128-row one and the 32-row one)
    // undefined: the default (SHARELORA_WEBGPU_ATTENTION_TILE=auto: the backward's products on 64-row tiles, causal);
    // 'attention plan': the GEMM's own tile (128 rows here)
    const cases: Array<[string | undefined, AttentionCase]> = [
      [undefined, [1, 2, 2, 257, 6, true, true]],
      ['32x32', [2, 2, 1, 100, 6, true, true]],
      ['attention plan', [1, 3, 1, 200, 6, true, false]],
    ];
    for (const [i, [tile, c]] of cases.entries()) {
      delete process.env.SHARELORA_GEMM_TILE; delete process.env.SHARELORA_WEBGPU_ATTENTION_TILE;
      if (tile?.startsWith('attention ')) process.env.SHARELORA_WEBGPU_ATTENTION_TILE = tile.slice('attention '.length);
      else if (tile) process.env.SHARELORA_GEMM_TILE = tile;
      const calls = causalSkipStats.calls;
      await checkAttentionCase((name, f, g, cs) => checkAgainstCpu(`${name} tile ${tile ?? 'plan'}`, f, g, cs, 1e-4), c, 40 + 10 * i, { rows: i === 1 });
      assert.ok(causalSkipStats.calls > calls, `tile ${tile ?? 'plan'}: the trimmed backward did not run`);
    }
  });
});
