/**
 * The batch's device check in one dispatch (src/backend/webgpu/batch-check.ts) against the tfjs-core reference
 * (src/backend/ops.ts batchCounts) on the cpu backend: ids, masks and labels as int32, float32 and bool, with every
 * kind of bad value (negative, too large, fractional, NaN, ±Infinity, -100 where it is and is not allowed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { batchCounts } from '../../src/backend/ops.js';
import { releaseGPU, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;

type Spec = { vocab: number; labelRange: number; regression: boolean; skipFirst: boolean };
interface Case { name: string; ids?: [number[][], tf.DataType]; mask?: [number[][], tf.DataType]; labels?: [number[] | number[][], tf.DataType]; o: Spec }

async function countsOn(backend: string, c: Case): Promise<number[]> {
  await tf.setBackend(backend);
  const t = (x?: [number[] | number[][], tf.DataType]) => (x ? tf.tensor(x[0], undefined, x[1]) : undefined);
  const parts = [t(c.ids), t(c.mask), t(c.labels)];
  const out = batchCounts(parts[0], parts[1], parts[2], c.o);
  const v = Array.from(await out.data());
  tf.dispose([out, ...parts.filter((p): p is tf.Tensor => !!p)]);
  return v;
}

const cls = { vocab: 50, labelRange: 3, regression: false, skipFirst: false };
const causal = { vocab: 50, labelRange: 50, regression: false, skipFirst: true };
const CASES: Case[] = [
  { name: 'a clean classification batch (int32)', ids: [[[1, 2, 3], [4, 5, 0]], 'int32'], mask: [[[1, 1, 1], [1, 1, 0]], 'int32'], labels: [[0, 2], 'int32'], o: cls },
  { name: 'bad int32 ids, mask and labels', ids: [[[-1, 50, 3], [49, 0, 1000]], 'int32'], mask: [[[1, 2, 0], [-1, 1, 1]], 'int32'], labels: [[3, -100, -1], 'int32'], o: cls },
  { name: 'float32 ids: fractional, NaN, ±Infinity, in range', ids: [[[1.5, NaN, Infinity], [-Infinity, 2, 49]], 'float32'], mask: [[[0.5, NaN, 1], [0, 1, 1]], 'float32'], labels: [[1, NaN, 2.5, -100], 'float32'], o: cls },
  { name: 'a bool mask', ids: [[[1, 2], [3, 4]], 'int32'], mask: [[[1, 0], [1, 1]], 'bool'], labels: [[0, 1], 'int32'], o: cls },
  { name: 'causal labels: the first column carries no loss, -100 none', ids: [[[1, 2, 3, 4], [5, 6, 7, 8]], 'int32'], labels: [[[9, -100, 3, 50], [-100, 4, -100, 7]], 'int32'], o: causal },
  { name: 'all labels ignored', ids: [[[1, 2], [3, 4]], 'int32'], labels: [[-100, -100], 'int32'], o: cls },
  { name: 'regression targets: NaN and ±Infinity are bad, every target carries a loss', ids: [[[1, 2], [3, 4], [5, 6]], 'int32'], labels: [[0.5, NaN, -Infinity, 3], 'float32'], o: { ...cls, labelRange: 1, regression: true } },
  { name: 'labels alone', labels: [[0, 7], 'int32'], o: cls },
  { name: 'ids alone', ids: [[[1, 99]], 'int32'], o: cls },
];

describe('the batch check in one dispatch (webgpu)', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP batch check: ${skip}`); });
  after(() => releaseGPU());

  for (const c of CASES) {
    it(c.name, async (t) => {
      if (skip) return t.skip(skip);
      const want = await countsOn('cpu', c);
      const got = await countsOn('webgpu', c);
      assert.deepEqual(got, want);
    });
  }

  it('is one kernel on webgpu, where the reference is about fifteen', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    const ids = tf.tensor2d([[1, 2, 3], [4, 5, 6]], undefined, 'int32'), mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]], undefined, 'int32'), labels = tf.tensor1d([0, 1], 'int32');
    const p = await tf.profile(() => batchCounts(ids, mask, labels, cls));
    assert.deepEqual(p.kernelNames, ['ShareLoraBatchCheck']);
    tf.dispose([ids, mask, labels]);
  });
});
