/**
 * Attention on [B·T, 3C] rows (ops.attentionPackedRows, what GPT-2 runs with
 * SHARELORA_WEBGPU_FLAT_STREAM=1) against the tfjs-core reference on cpu
 * (reshape to [B, T, 3C], attentionPacked, reshape back): the output and the
 * gradient of qkv, which must come back as rows too. Odd head dims, several
 * sequences per batch (a wrong T or B in the kernel reads the wrong rows),
 * a key mask, and a head dim above the flash kernel's 64, so both forwards
 * (flash.ts and the three-launch one in attention.ts) take rows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { forwardAndGrads, randn, relErr, releaseGPU, webgpuUnavailable, type Case } from './helpers.js';

process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

describe('attention on [B·T, 3C] rows', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP flat-stream tests: ${skip}`); });
  after(() => releaseGPU());

  it('matches attentionPacked on [B, T, 3C]: output and gradient, flash and three-launch forwards', async (t) => {
    if (skip) return t.skip(skip);
    // B, H, T, D, causal, masked
    const configs: Array<[number, number, number, number, boolean, boolean]> = [
      [3, 2, 37, 5, true, false],
      [2, 8, 70, 4, true, true],
      [2, 3, 33, 7, false, true],
      [2, 1, 19, 80, true, true], // D > 64: not the flash kernel
    ];
    for (const [B, H, T, D, causal, masked] of configs) {
      const C = H * D;
      const km = new Int32Array(B * T).fill(1);
      if (masked) for (let b = 0; b < B; b++) for (let j = 0; j < b * 3 + 2; j++) km[b * T + T - 1 - j] = 0;
      const inputs: Case['inputs'] = [{ data: randn(B * T * 3 * C, 41 + D), shape: [B * T, 3 * C] }];
      if (masked) inputs.push({ data: km, shape: [B, T], dtype: 'int32' });
      const opts = (m?: tf.Tensor) => ({ heads: H, causal, keyMask: m as tf.Tensor2D | undefined, scale: 1 / Math.sqrt(D) });
      const mk = (impl: typeof ref.attentionPackedRows) => (qkv: tf.Tensor, m?: tf.Tensor) => {
        const y = impl(qkv as tf.Tensor2D, T, opts(m));
        assert.deepEqual(y.shape, [B * T, C]);
        return y;
      };
      const name = `B${B} H${H} T${T} D${D} causal=${causal} masked=${masked}`;
      const want = await forwardAndGrads('cpu', mk(ref.attentionPackedRows), { inputs, wrt: [0] });
      const got = await forwardAndGrads('webgpu', mk(ours.attentionPackedRows), { inputs, wrt: [0] });
      const e = relErr(got.out, want.out);
      assert.ok(e < 1e-4, `${name}: forward rel err ${e}`);
      const eg = relErr(got.grads[0], want.grads[0]);
      assert.ok(eg < 1e-4, `${name}: grad of qkv rel err ${eg}`);
    }
  });
});
