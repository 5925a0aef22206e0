/**
 * The flash-style attention forward (src/backend/webgpu/flash.ts) against
 * the tfjs-core reference on the cpu backend, on sequences longer than one
 * query block (64) and one key block (32), so the online softmax crosses
 * blocks and causal skipping happens: outputs, and every gradient (the
 * backward rebuilds the softmax from the LSE this kernel writes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { checkAgainstCpu, f32, releaseGPU, webgpuUnavailable, type Case } from './helpers.js';

process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

const check = checkAgainstCpu;

describe('flash attention forward', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP flash attention tests: ${skip}`); });
  after(() => releaseGPU());

  it('matches the reference across query and key blocks: causal, key mask, GQA, packed', async (t) => {
    if (skip) return t.skip(skip);
    // B, H, Hkv, T, D, causal, masked
    const configs: Array<[number, number, number, number, number, boolean, boolean]> = [
      [2, 2, 2, 100, 16, true, false],
      [1, 4, 2, 70, 8, true, true],
      [2, 2, 1, 67, 4, false, true],
      [1, 2, 2, 130, 64, true, false],
    ];
    for (const [B, H, Hkv, T, D, causal, masked] of configs) {
      const km = new Int32Array(B * T).fill(1);
      if (masked) for (let b = 0; b < B; b++) for (let j = 0; j < b * 5 + 3; j++) km[b * T + T - 1 - j] = 0;
      const inputs: Case['inputs'] = [f32([B, T, H * D], 31), f32([B, T, Hkv * D], 32), f32([B, T, Hkv * D], 33)];
      if (masked) inputs.push({ data: km, shape: [B, T], dtype: 'int32' });
      const opts = (m?: tf.Tensor) => ({ heads: H, kvHeads: Hkv, causal, keyMask: m as tf.Tensor2D | undefined, scale: 1 / Math.sqrt(D) });
      const mk = (impl: typeof ref.attention) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m?: tf.Tensor) =>
        impl(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts(m));
      await check(`attention B${B} H${H}/${Hkv} T${T} D${D} causal=${causal} masked=${masked}`, mk(ref.attention), mk(ours.attention), { inputs, wrt: [0, 1, 2] });
      if (H === Hkv) {
        const packed: Case['inputs'] = [f32([B, T, 3 * H * D], 34), ...inputs.slice(3)];
        const mp = (impl: typeof ref.attentionPacked) => (qkv: tf.Tensor, m?: tf.Tensor) => impl(qkv as tf.Tensor3D, opts(m));
        await check(`attentionPacked B${B} H${H} T${T} D${D} causal=${causal} masked=${masked}`, mp(ref.attentionPacked), mp(ours.attentionPacked), { inputs: packed, wrt: [0] });
      }
    }
  });
});
