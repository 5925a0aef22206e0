/**
 * The multi-tensor optimizer kernels (src/backend/webgpu/optim.ts,
 * SHARELORA_WEBGPU_MULTI_TENSOR=1) against the tfjs-core composition on cpu:
 * gradient statistics of many tensors as rows of one [n, 2] tensor, and
 * AdamW over many parameters in one op. More tensors than one dispatch can
 * bind (the kernels split them by the device's storage-buffer limit), odd
 * sizes, sizes under and over one 256-wide workgroup, a non-finite gradient.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';

process.env.SHARELORA_WEBGPU_MULTI_TENSOR = '1';
const ref = await import('../../src/backend/ops.js');
const { randn, relErr, releaseGPU, webgpuUnavailable } = await import('./helpers.js');

let skip: string | undefined;
const SIZES = [[37], [3, 5], [1], [256], [257, 3], [8, 33], [511], [2, 2, 7], [300], [13], [1000], [4, 9], [6], [129], [64, 3], [17], [2], [31, 31], [5]];

async function onBackend<T>(backend: 'cpu' | 'webgpu', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const ts = f();
  const out = await Promise.all(ts.map(async (t) => await t.data() as Float32Array));
  tf.dispose(ts);
  return out;
}

describe('multi-tensor optimizer kernels', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP multi-tensor tests: ${skip}`); });
  after(() => releaseGPU());

  it('gradStatsMany equals gradStats of each tensor, stacked (incl. an Inf and a NaN)', async (t) => {
    if (skip) return t.skip(skip);
    const data = SIZES.map((s, k) => randn(s.reduce((a, b) => a * b, 1), 100 + k, 0.5));
    data[4][100] = Infinity;
    data[9][3] = NaN;
    const make = () => data.map((d, k) => tf.tensor(d, SIZES[k]));
    const want = await onBackend('cpu', () => { const gs = make(); const r = ref.gradStatsMany(gs); tf.dispose(gs); return [r]; });
    const got = await onBackend('webgpu', () => {
      const gs = make();
      const r = ref.gradStatsMany(gs);
      assert.deepEqual(r.shape, [SIZES.length, 2]);
      tf.dispose(gs);
      return [r];
    });
    // the finite flags exactly, the sums of squares within 1e-4 (rows with a NaN compare as flags only)
    for (let k = 0; k < SIZES.length; k++) {
      assert.equal(got[0][2 * k + 1], want[0][2 * k + 1], `tensor ${k}: finite flag`);
      if (k === 9) continue;
      const e = Math.abs(got[0][2 * k] - want[0][2 * k]) / Math.abs(want[0][2 * k]);
      assert.ok(e < 1e-4 || (!Number.isFinite(want[0][2 * k]) && got[0][2 * k] === want[0][2 * k]), `tensor ${k}: Σg² ${got[0][2 * k]} vs ${want[0][2 * k]}`);
    }
  });

  it('adamwUpdates equals adamwUpdate per parameter (p, m, v), over several dispatches', async (t) => {
    if (skip) return t.skip(skip);
    const h = { decay: 1 - 1e-3 * 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3 / (1 - 0.9 ** 3), sqrtBc2: Math.sqrt(1 - 0.999 ** 3), gscale: 0.7 };
    const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const arrays = SIZES.map((s, k) => ({
      p: randn(n(s), 200 + k), g: randn(n(s), 300 + k), m: randn(n(s), 400 + k, 0.1),
      v: Float32Array.from(randn(n(s), 500 + k, 0.01), (x) => x * x),
    }));
    const run = (backend: 'cpu' | 'webgpu') => onBackend(backend, () => {
      const items = arrays.map((a, k) => ({ p: tf.tensor(a.p, SIZES[k]), g: tf.tensor(a.g, SIZES[k]), m: tf.tensor(a.m, SIZES[k]), v: tf.tensor(a.v, SIZES[k]) }));
      const outs: tf.Tensor[] = [];
      let calls = 0;
      ref.adamwUpdates(items, h, (i, next) => {
        assert.equal(i, calls++, 'results in order');
        next.forEach((x) => assert.deepEqual(x.shape, SIZES[i]));
        outs.push(...next);
      });
      assert.equal(calls, SIZES.length);
      tf.dispose(items.flatMap((it) => [it.p, it.g, it.m, it.v]));
      return outs;
    });
    const want = await run('cpu');
    const got = await run('webgpu');
    // p' as its change from p: the step is ~1e-3 of p, so p' itself would hide a wrong step
    const delta = (x: Float32Array, j: number) => j % 3 ? x : x.map((y, i) => y - arrays[Math.floor(j / 3)].p[i]);
    // p' − p loses ~log2(|p| / |step|) ≈ 8–10 bits of p's float32 mantissa, so its rounding alone reaches ~1e-4
    // (1.08e-4 on the H100, session 10, where the GPU compiler contracts to FMAs). A gscale left out moves m'
    // by 0.1·0.3·g, about a fifth of m' here, so 5e-4 still catches a wrong step; m and v have no such cancellation.
    want.forEach((w, j) => {
      const e = relErr(delta(got[j], j), delta(w, j));
      assert.ok(e < (j % 3 ? 1e-4 : 5e-4), `parameter ${Math.floor(j / 3)} ${'pmv'[j % 3]}: rel err ${e}`);
    });
  });
});
