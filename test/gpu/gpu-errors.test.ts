/**
 * A GPU error that nobody captured (here: a buffer larger than the device
 * allows, as an out-of-memory is) must stop results from being cached: on
 * 2026-12-06 runs of a call that ran the GPU out of memory were cached with a
 * validation loss of exactly ln 2, read from buffers that were never made.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { gpuHealth } from '../../src/backend/index.js';
import { webgpuBackend } from '../../src/backend/webgpu/index.js';
import { RunCache } from '../../src/train/run-cache.js';
import { runProtocol } from '../../src/train/protocol.js';
import { releaseGPU, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0);

describe('GPU errors and the run cache', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP gpu-errors: ${skip}`); });
  after(() => releaseGPU());

  it('runs finished before an uncaptured GPU error are kept; after it, the cache and runProtocol refuse them', async (t) => {
    if (skip) return t.skip(skip);
    const dir = mkdtempSync(join(tmpdir(), 'gpu-errors-'));
    const file = join(dir, 'runs.jsonl');
    // a real run on the GPU first, then a clean health report
    const m = tf.tidy(() => tf.sum(tf.mul(tf.ones([64, 64]), 2)));
    const value = (await m.data())[0]!;
    m.dispose();
    assert.equal(value, 8192);
    assert.deepEqual(await gpuHealth(), { errors: 0 });
    const cache = new RunCache<{ key: string; metrics: { v: number }; seconds: number }>('test', file);
    await cache.put({ key: 'a', metrics: { v: value }, seconds: 0 });
    assert.equal(lines(file), 1);

    // the error: reported asynchronously, as WebGPU does for an allocation that fails
    const device = webgpuBackend().device as GPUDevice;
    device.createBuffer({ size: 2 ** 40, usage: GPUBufferUsage.STORAGE });
    const h = await gpuHealth();
    assert.equal(h.errors, 1);
    assert.match(h.first ?? '', /max buffer size|GPUValidationError|OutOfMemory/i);
    await assert.rejects(cache.put({ key: 'b', metrics: { v: 0.6931471824645996 }, seconds: 0 }), /GPU reported 1 error\(s\).*run b .*is not kept/s);
    assert.equal(lines(file), 1, 'nothing appended after the error');

    // the same through runProtocol: its first run is refused, so nothing reaches its results file
    const pfile = join(dir, 'protocol.jsonl');
    await assert.rejects(runProtocol({
      methods: { LoRA: {} }, lrs: [1e-3, 3e-3, 1e-2, 3e-2], tuneSeeds: [1000], seeds: 1,
      select: { metric: 'valLoss', goal: 'min' }, cache: pfile, log: false,
    }, async () => ({ valLoss: 0.5 })), /GPU reported/);
    assert.equal(lines(pfile), 0);

    // and a Trainer's evaluate: its metrics would be read from the same state
    const { loadModelFromDir } = await import('../../src/models/load.js');
    const { Trainer } = await import('../../src/train/trainer.js');
    const { injectShareLoRA } = await import('../../src/adapters/sharelora.js');
    const { FIXTURES } = await import('../helpers.js');
    const model = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'), { task: 'seq-cls', numLabels: 2, seed: 1 });
    const trainer = new Trainer(model, injectShareLoRA(model, { r: 2, targets: ['q', 'v'], share: 'A' }), { lr: 1e-3 });
    await assert.rejects(trainer.evaluate([{ inputIds: [[5, 17, 99, 3]], attentionMask: [[1, 1, 1, 1]], labels: [1] }]), /trainer\.evaluate: the GPU reported 1 error/);
    trainer.dispose(); model.dispose();
  });
});
