/**
 * The residual add fused with the LayerNorm after it (webgpu/norm.ts,
 * ops.addLayerNorm under SHARELORA_WEBGPU_FUSED_LN=1) against the plain
 * composition (tf.add, then the reference layerNorm) on the cpu backend:
 * both outputs and the gradients of x, a, gamma and beta, for row widths
 * below, above and not a multiple of each workgroup size the row rule picks
 * (64, 128, 256), and with either output unused downstream (tfjs then hands
 * the backward a null dy for it: GPT-2's last add, whose sum only ln_f reads).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { forwardAndGrads, randn, relErr, releaseGPU, webgpuUnavailable, type Case } from './helpers.js';

let skip: string | undefined;

const plain = (x: tf.Tensor, a: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): [tf.Tensor, tf.Tensor] => {
  const h = tf.add(x, a);
  return [h, ref.layerNorm(h, g, b, eps)];
};

describe('residual add + LayerNorm, fused', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP fused norm tests: ${skip}`); });
  after(() => releaseGPU());

  it('matches tf.add then layerNorm: outputs and every gradient', async (t) => {
    if (skip) return t.skip(skip);
    const shapes = [[3, 7, 37], [2, 5, 64], [4, 100], [2, 3, 600], [5, 2100]];
    for (const shape of shapes) {
      const D = shape[shape.length - 1];
      const n = shape.reduce((p, q) => p * q, 1);
      const c: Case = {
        // a offset and scaled so mean and variance of h are far from 0 and 1
        inputs: [
          { data: randn(n, D + 1, 1.5), shape }, { data: randn(n, D + 2, 0.7).map((v) => v + 0.3), shape },
          { data: randn(D, D + 3, 0.5).map((v) => v + 1), shape: [D] }, { data: randn(D, D + 4, 0.2), shape: [D] },
        ],
        wrt: [0, 1, 2, 3],
      };
      for (const use of ['both', 'y only', 'h only'] as const) {
        const mk = (impl: typeof plain) => (x: tf.Tensor, a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const [h, y] = impl(x, a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5);
          return use === 'both' ? tf.stack([h, y]) : use === 'y only' ? y : h;
        };
        // h alone does not depend on gamma or beta (tf.grads refuses them)
        const cu: Case = use === 'h only' ? { ...c, wrt: [0, 1] } : c;
        const want = await forwardAndGrads('cpu', mk(plain), cu);
        const got = await forwardAndGrads('webgpu', mk(ours.addLayerNorm), cu);
        const name = `[${shape}] ${use}`;
        const e = relErr(got.out, want.out);
        assert.ok(e < 1e-4, `${name}: forward rel err ${e}`);
        assert.equal(got.grads.length, cu.wrt.length);
        want.grads.forEach((wg, i) => {
          const eg = relErr(got.grads[i], wg);
          assert.ok(eg < 1e-4, `${name}: grad of input ${cu.wrt[i]} rel err ${eg}`);
        });
      }
    }
  });

  it('broadcasts a like tf.add (the plain composition on webgpu too)', async (t) => {
    if (skip) return t.skip(skip);
    const c: Case = { inputs: [{ data: randn(4 * 40, 1), shape: [4, 40] }, { data: randn(40, 2), shape: [40] }, { data: randn(40, 3), shape: [40] }, { data: randn(40, 4), shape: [40] }], wrt: [0, 1, 2, 3] };
    const mk = (impl: typeof plain) => (x: tf.Tensor, a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.stack(impl(x, a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5));
    const want = await forwardAndGrads('cpu', mk(plain), c);
    const got = await forwardAndGrads('webgpu', mk(ours.addLayerNorm), c);
    assert.ok(relErr(got.out, want.out) < 1e-4);
    want.grads.forEach((wg, i) => assert.ok(relErr(got.grads[i], wg) < 1e-4, `grad ${i}`));
  });
});
