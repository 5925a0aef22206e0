/**
 * The flash-style attention backward (src/backend/webgpu/flash-backward.ts,
 * SHARELORA_WEBGPU_FLASH_BACKWARD=1) against the tfjs-core reference on the
 * cpu backend: every gradient, on sequences longer than one 64-row block with
 * a ragged last block, so both kernels cross blocks, causal skipping happens,
 * and GQA heads are summed inside the dK/dV kernel. Each case also checks the
 * new path ran once, so the old backward cannot pass this test for it.
 */
process.env.SHARELORA_WEBGPU_FLASH_BACKWARD = '1';   // read once, on the first backward
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { flashBackwardStats } from '../../src/backend/webgpu/flash-backward.js';
import { checkAgainstCpu, checkAttentionCase, f32, forwardAndGrads, relErr, releaseGPU, webgpuUnavailable, type AttentionCase, type Case } from './helpers.js';

process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

async function check(name: string, f: (...x: tf.Tensor[]) => tf.Tensor, g: (...x: tf.Tensor[]) => tf.Tensor, c: Case) {
  const calls = flashBackwardStats.calls;
  await checkAgainstCpu(name, f, g, c);
  assert.equal(flashBackwardStats.calls - calls, 1, `${name}: the flash backward ran ${flashBackwardStats.calls - calls} times, expected once`);
}

describe('flash attention backward', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP flash backward tests: ${skip}`); });
  after(() => releaseGPU());

  it('matches the reference gradients across blocks: causal, key mask, GQA, packed, rows', async (t) => {
    if (skip) return t.skip(skip);
    // B, H, Hkv, T, D, causal, masked
    const configs: AttentionCase[] = [
      [2, 2, 2, 100, 16, true, false],
      [1, 4, 2, 70, 8, true, true],
      [2, 2, 1, 67, 4, false, true],
      // head dims 32 and 64 unroll into shaders that lavapipe takes ~6 minutes to compile cold (CI's fresh cache):
      // FLASH_BACKWARD_ALL=1 adds them (bench/gpu-all.sh's opt-in tests set it on the GPU, where they compile in seconds)
      ...(process.env.FLASH_BACKWARD_ALL === '1' ? [
        [1, 2, 2, 130, 64, true, false],
        [2, 3, 3, 129, 32, false, false],
        [1, 4, 1, 96, 32, true, true],
      ] as AttentionCase[] : []),
    ];
    for (const c of configs) await checkAttentionCase(check, c, 41, { rows: true });
  });

  it('one tensor as q, k and v (one input binding, three gradients summed by tfjs)', async (t) => {
    if (skip) return t.skip(skip);
    const [B, H, T, D] = [2, 2, 75, 16];
    const opts = { heads: H, causal: true, scale: 1 / Math.sqrt(D) };
    const mk = (impl: typeof ref.attention) => (x: tf.Tensor) => impl(x as tf.Tensor3D, x as tf.Tensor3D, x as tf.Tensor3D, opts);
    await check(`attention(x, x, x) B${B} H${H} T${T} D${D}`, mk(ref.attention), mk(ours.attention), { inputs: [f32([B, T, H * D], 46)], wrt: [0] });
  });

  it('keeps the old backward where the forward kernel does not run (D not a multiple of 4)', async (t) => {
    if (skip) return t.skip(skip);
    const [B, H, T, D] = [1, 2, 40, 6];
    const inputs: Case['inputs'] = [f32([B, T, H * D], 51), f32([B, T, H * D], 52), f32([B, T, H * D], 53)];
    const opts = { heads: H, causal: true, scale: 1 / Math.sqrt(D) };
    const mk = (impl: typeof ref.attention) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => impl(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts);
    const want = await forwardAndGrads('cpu', mk(ref.attention), { inputs, wrt: [0, 1, 2] });
    const calls = flashBackwardStats.calls;
    const got = await forwardAndGrads('webgpu', mk(ours.attention), { inputs, wrt: [0, 1, 2] });
    assert.equal(flashBackwardStats.calls, calls, 'D = 6 should take the old backward');
    want.grads.forEach((wg, i) => assert.ok(relErr(got.grads[i], wg) < 1e-4, `D = 6: grad of input ${i}`));
  });
});
