/**
 * UnsortedSegmentSum on wasm (src/backend/wasm-segment-sum.ts): the gradient
 * of a Gather equals the cpu backend's, and full fine-tuning, embeddings
 * included, trains on wasm with cpu's loss curve.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { loadModel } from '../src/models/index.js';
import { fullFineTune } from '../src/adapters/full.js';
import { Trainer } from '../src/train/trainer.js';

async function onBackend<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await useBackend(name);
  return fn();
}

describe('UnsortedSegmentSum on wasm', () => {
  it('the gradient of a Gather (repeated and out-of-range-free ids) equals cpu\'s', async () => {
    const table = Array.from({ length: 7 * 5 }, (_, i) => Math.sin(i) * 3);
    const ids = [3, 1, 3, 6, 0, 3];
    const up = Array.from({ length: ids.length * 5 }, (_, i) => Math.cos(i));
    const grad = async () => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(ids, 'int32')), tf.tensor2d(up, [ids.length, 5]))))(tf.tensor2d(table, [7, 5]));
      const v = Array.from(await g.data());
      g.dispose();
      return v;
    };
    const cpu = await onBackend('cpu', grad);
    const wasm = await onBackend('wasm', grad);
    assert.equal(wasm.length, 35);
    wasm.forEach((v, i) => assert.ok(Math.abs(v - cpu[i]!) < 1e-5, `element ${i}: ${v} vs ${cpu[i]}`));
    assert.ok(cpu.slice(3 * 5, 4 * 5).some((v) => v !== 0) && cpu.slice(2 * 5, 3 * 5).every((v) => v === 0), 'row 3 sums three rows, row 2 none');
  });

  it('fullFineTune (embeddings included) trains on wasm with cpu\'s losses', async () => {
    const curve = async () => {
      const m = await loadModel('sharelora-gpt2-mini', { task: 'causal-lm' });
      const tr = new Trainer(m, fullFineTune(m), { lr: 1e-3, seed: 0 });
      const ids = [[10, 20, 30, 40, 50, 60, 70, 80], [5, 6, 7, 8, 9, 10, 11, 12]];
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push(await tr.step({ inputIds: ids, labels: ids }));
      tr.dispose();
      m.dispose();
      return losses;
    };
    const cpu = await onBackend('cpu', curve);
    const wasm = await onBackend('wasm', curve);
    assert.ok(wasm[2]! < wasm[0]!, `loss falls: ${wasm}`);
    wasm.forEach((v, i) => assert.ok(Math.abs(v - cpu[i]!) < 1e-3 * Math.abs(cpu[i]!), `step ${i}: wasm ${v} vs cpu ${cpu[i]}`));
  });
});
