/**
 * A device with WebGPU's guaranteed 16 KiB of workgroup memory (maxComputeWorkgroupStorageSize), where the GEMM plans'
 * tiles (128 × 256: 24 KiB, 32-deep 128 × 128: 32 KiB) do not fit: each planned product falls back to the largest
 * library tile that does (gemm.ts fitWorkgroupMemory) and agrees with the cpu backend, and a GPT-2 step trains.
 * The device is lavapipe's (or the GPU's), created without the adapter's larger limit: the test wraps the adapter's
 * requestDevice before the backend starts, so this file runs in a process of its own (node --test does that).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { fitWorkgroupMemory, gemmSharedBytes, tileNamed, widePlan } from '../../src/backend/webgpu/gemm.js';
import { webgpuBackend } from '../../src/backend/webgpu/dispatch.js';
import { gpuHealth } from '../../src/backend/webgpu/errors.js';
import { dawnFlags } from '../../src/backend/webgpu/device.js';
import { injectShareLoRA, randomModel, Trainer } from '../../src/index.js';
import { randn, relErr, releaseGPU, webgpuUnavailable } from './helpers.js';

const LIMIT = 16384;
let skip: string | undefined;

/** navigator.gpu whose adapters hand out devices at WebGPU's default workgroup memory, whatever the adapter offers */
async function defaultWorkgroupMemory(): Promise<void> {
  const webgpu = await import('webgpu') as unknown as { create: (f: string[]) => GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create(dawnFlags());
  const proto = (globalThis as unknown as { GPUAdapter: { prototype: GPUAdapter } }).GPUAdapter.prototype;
  const orig = proto.requestDevice;
  proto.requestDevice = function (this: GPUAdapter, d?: GPUDeviceDescriptor) {
    const requiredLimits = { ...(d?.requiredLimits ?? {}) } as Record<string, number>;
    delete requiredLimits.maxComputeWorkgroupStorageSize;
    return orig.call(this, { ...d, requiredLimits });
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

describe('GEMMs on a device with 16 KiB of workgroup memory', () => {
  before(async () => {
    try { await defaultWorkgroupMemory(); } catch (e) { skip = `webgpu package: ${(e as Error).message}`; return; }
    skip = await webgpuUnavailable();
    if (skip) console.log(`# SKIP workgroup-limit tests: ${skip}`);
  });
  after(() => releaseGPU());

  it('the fallback: the largest library tile whose shared memory fits', () => {
    const wide = tileNamed('128x256', 'test'), deep = tileNamed('128x128k32', 'test'), big = tileNamed('128x128', 'test'), mid = tileNamed('64x64t4', 'test');
    assert.equal(fitWorkgroupMemory(wide, true, 32768), wide);
    assert.equal(fitWorkgroupMemory(wide, true, LIMIT), big, 'a split partial on 128 × 128 single-buffered (16 KiB)');
    assert.equal(fitWorkgroupMemory(wide, false, LIMIT), mid, 'unsplit 128 × 128 is double-buffered (32 KiB)');
    assert.equal(fitWorkgroupMemory(deep, false, LIMIT), mid);
    assert.equal(gemmSharedBytes(big, true), LIMIT);
  });

  it('planned products that exceed the limit run on the fallback and agree with the cpu backend', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    assert.equal(webgpuBackend().device.limits.maxComputeWorkgroupStorageSize, LIMIT, 'the device has the default limit');
    // M, N, K: an unsplit 128 × 256 (128 tiles, 97% of 132 SMs), a split one (33 tiles × 4 slices), a 32-deep 128 × 128
    const shapes: Array<[number, number, number]> = [[1024, 4096, 128], [384, 2816, 1024], [200, 136, 96]];
    const before = (await gpuHealth(webgpuBackend())).errors;
    for (const [M, N, K] of shapes) {
      const plan = widePlan(M, N, K, 1, { t: tileNamed('128x128', 'test'), S: 1 }, true, 132, LIMIT, false);
      assert.ok(gemmSharedBytes(plan.t, plan.S > 1) > LIMIT, `${M} x ${N} x ${K}: the plan's tile needs more than the limit`);
      const a = randn(M * K, M), b = randn(K * N, N, 0.1);
      const got = await tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N])).data();
      await tf.setBackend('cpu');
      const want = await tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N])).data();
      await tf.setBackend('webgpu');
      assert.ok(relErr(got, want) < 1e-5, `${M} x ${N} x ${K}: rel err ${relErr(got, want)}`);
    }
    assert.equal((await gpuHealth(webgpuBackend())).errors, before, 'no GPU validation error');
  });

  it('a GPT-2 ShareA step trains', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    const model = randomModel({ model_type: 'gpt2', n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 300, n_positions: 64, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }, { seed: 1 });
    const adapter = injectShareLoRA(model, { r: 4, alpha: 8, targets: ['c_attn'], share: 'A', seed: 1 });
    const trainer = new Trainer(model, adapter, { lr: 1e-2 });
    const ids = Array.from({ length: 2 }, (_, b) => Array.from({ length: 32 }, (_, i) => (b * 37 + i * 11) % 300));
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) losses.push(await trainer.step({ inputIds: ids, labels: ids }));
    assert.ok(losses.every(Number.isFinite) && losses[2] < losses[0], `losses ${losses}`);
  });
});
