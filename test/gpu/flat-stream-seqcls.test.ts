/**
 * GPT-2 as a classifier with SHARELORA_WEBGPU_FLAT_STREAM=1: the stream runs
 * as [B·T, C] rows and goes back to [B, T, C] only to pick each sequence's
 * last real token. No reference fixture covers this path (the GPT-2 fixture
 * is a language model), so the webgpu logits and adapter gradients are
 * compared with the plain path on the cpu backend, on right-padded rows.
 */
process.env.SHARELORA_WEBGPU_FLAT_STREAM = '1';   // read lazily, on the first forward
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../../src/models/load.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import { crossEntropy } from '../../src/backend/ops.js';
import { flags } from '../../src/backend/flags.js';
import { FIXTURES } from '../helpers.js';
import { relErr, releaseGPU, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;
const ids = [[5, 17, 99, 3, 250, 11, 40], [8, 300, 21, 64, 2, 9, 0], [7, 1, 2, 0, 0, 0, 0]];
const mask = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0, 0]];
const labels = [0, 1, 1];

async function logitsAndGrads(backend: 'cpu' | 'webgpu'): Promise<{ logits: Float32Array; grads: Map<string, Float32Array> }> {
  await tf.setBackend(backend);
  const m = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'), { task: 'seq-cls', numLabels: 2, seed: 3 });
  const ad = injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'v'], share: 'A', seed: 5 });
  // B starts at zero; a fixed non-zero B makes the adapter part of the logits and of every gradient
  for (const [name, v] of ad.namedParameters()) if (name.includes('lora_B')) v.assign(tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', 11), 0.05));
  const vars = ad.trainableVariables();
  const lt = tf.tidy(() => m.forward({ inputIds: ids, attentionMask: mask }).logits);
  const logits = (await lt.data()) as Float32Array;   // webgpu in Node reads asynchronously only
  lt.dispose();
  const { grads } = tf.variableGrads(() => crossEntropy(m.forward({ inputIds: ids, attentionMask: mask, training: true }).logits as tf.Tensor2D, tf.tensor1d(labels, 'int32')) as tf.Scalar, vars);
  const out = new Map<string, Float32Array>();
  for (const [name, v] of ad.namedParameters()) out.set(name, (await grads[v.name]!.data()) as Float32Array);
  Object.values(grads).forEach((g) => g.dispose());
  ad.unload(); m.dispose();
  return { logits, grads: out };
}

describe('GPT-2 classifier on the flat [B·T, C] stream', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP flat-stream seq-cls: ${skip}`); });
  after(() => releaseGPU());

  it('webgpu with the flat stream gives the cpu path\'s logits and adapter gradients (right padding, last real token)', async (t) => {
    if (skip) return t.skip(skip);
    const want = await logitsAndGrads('cpu');
    const got = await logitsAndGrads('webgpu');
    assert.equal(flags.webgpuFlatStream, true, 'the switch was on');
    assert.equal(got.logits.length, 6);
    const e = relErr(got.logits, want.logits);
    assert.ok(e < 1e-4, `logits rel err ${e}: ${[...got.logits]} vs ${[...want.logits]}`);
    assert.ok(want.grads.size > 0);
    for (const [name, g] of want.grads) {
      const eg = relErr(got.grads.get(name)!, g);
      assert.ok(eg < 1e-3, `${name}: gradient rel err ${eg}`);
    }
  });
});
