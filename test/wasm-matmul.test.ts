/**
 * BatchMatMul on wasm (src/backend/wasm-matmul.ts): transposed, batched (one XNNPACK product a batch entry, on
 * tensors registered over slices of the operands), batched against one matrix (rows folded) and the cases left to
 * tfjs, each against the cpu backend; the slice registrations and XNNPACK operators are given back; a causal
 * attention's gradients agree with cpu's; an operand transposed twice keeps its transpose until its data is freed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { wasmMatMulStats, wasmTransposeStats } from '../src/backend/wasm-matmul.js';

type Case = [number[], number[], boolean, boolean];
const CASES: Case[] = [
  [[4, 3, 32, 8], [4, 3, 32, 8], false, true], // attention's scores, q·kᵀ
  [[4, 3, 32, 32], [4, 3, 32, 8], false, false], // p·v
  [[4, 3, 32, 32], [4, 3, 32, 8], true, false], // pᵀ·dO
  [[6, 17, 19], [6, 19, 15], false, false], // rank 3, odd sizes
  [[6, 5, 7], [6, 7, 4], false, false], // slices too small for XNNPACK: tfjs's own loop
  [[3, 5, 7], [7, 4], false, false], // one B: rows folded
  [[2, 3, 5, 7], [4, 7], false, true], // one B, transposed
  [[1, 5, 7], [6, 7, 4], false, false], // A broadcast: tfjs's own loop
  [[6, 0, 7], [6, 7, 4], false, false], // empty
];

async function products(): Promise<number[][]> {
  return Promise.all(CASES.map(async ([sa, sb, ta, tb], i) => {
    const a = tf.randomNormal(sa, 0, 1, 'float32', 2 * i + 1), b = tf.randomNormal(sb, 0, 1, 'float32', 2 * i + 2);
    const c = tf.matMul(a, b, ta, tb);
    const v = Array.from(await c.data());
    tf.dispose([a, b, c]);
    return v;
  }));
}

describe('BatchMatMul on wasm', () => {
  it('agrees with the cpu backend batched, transposed, folded and broadcast, and routes each as planned', async () => {
    await useBackend('cpu');
    const want = await products();
    await useBackend('wasm');
    const before = { ...wasmMatMulStats };
    const got = await products();
    // three batched products (attention's shapes) and the odd rank-3 one go per batch entry; the two with one B fold
    assert.equal(wasmMatMulStats.perBatch - before.perBatch, 4);
    assert.equal(wasmMatMulStats.folded - before.folded, 2);
    got.forEach((g, i) => {
      assert.equal(g.length, want[i].length, `case ${i}: size`);
      g.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) <= 1e-5 * (1 + Math.abs(want[i][j])), `case ${i} (${CASES[i][0]} · ${CASES[i][1]}) [${j}]: ${x} against cpu's ${want[i][j]}`));
    });
  });

  it('gives back the slices it registers: the wasm heap and tensor count stay flat over many products', async () => {
    await useBackend('wasm');
    const be = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
    const q = tf.randomNormal([8, 4, 32, 16]), k = tf.randomNormal([8, 4, 32, 16]);
    const run = (n: number) => { for (let i = 0; i < n; i++) tf.tidy(() => { tf.matMul(q, k, false, true).dataSync(); }); };
    run(20);
    const heap = be.wasm.HEAPU8.length, tensors = tf.memory().numTensors;
    run(300); // 9,600 slice products, each with an XNNPACK operator created and deleted
    assert.equal(be.wasm.HEAPU8.length, heap, 'the wasm heap grew');
    assert.equal(tf.memory().numTensors, tensors);
    tf.dispose([q, k]);
  });

  it('keeps the transpose of an operand transposed twice (a frozen weight) until its data is freed, and of nothing used once', async () => {
    await useBackend('wasm');
    const be = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
    const x = tf.randomNormal([64, 96], 0, 1, 'float32', 1);
    const round = async () => {
      const w = tf.randomNormal([128, 96], 0, 1, 'float32', 2); // nn.Linear's [out, in]: x·Wᵀ
      const s0 = { ...wasmTransposeStats, entries: wasmTransposeStats.entries(), bytes: wasmTransposeStats.bytes() };
      const ys = [0, 1, 2].map(() => tf.matMul(x, w, false, true));
      const vals = await Promise.all(ys.map((y) => y.data()));
      // the first transpose is dropped, the second kept, the third read from the cache
      assert.equal(wasmTransposeStats.kept - s0.kept, 1);
      assert.equal(wasmTransposeStats.hits - s0.hits, 1);
      assert.equal(wasmTransposeStats.entries(), s0.entries + 1);
      assert.equal(wasmTransposeStats.bytes(), s0.bytes + 128 * 96 * 4);
      assert.deepEqual(vals[2], vals[0]);
      // a fresh operand each time (an activation): never kept
      for (let i = 0; i < 3; i++) tf.tidy(() => { tf.matMul(w, tf.add(x, i), false, true); });
      assert.equal(wasmTransposeStats.kept - s0.kept, 1);
      tf.dispose([w, ...ys]);
      assert.equal(wasmTransposeStats.freed - s0.freed, 1, 'freed with its data');
      assert.equal(wasmTransposeStats.entries(), s0.entries);
      assert.equal(wasmTransposeStats.bytes(), s0.bytes);
      return vals[0];
    };
    const first = await round();
    const heap = be.wasm.HEAPU8.length, tensors = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await round();
    assert.equal(be.wasm.HEAPU8.length, heap, 'the wasm heap grew');
    assert.equal(tf.memory().numTensors, tensors);
    await useBackend('cpu');
    const want = await tf.matMul(tf.randomNormal([64, 96], 0, 1, 'float32', 1), tf.randomNormal([128, 96], 0, 1, 'float32', 2), false, true).data();
    first.forEach((v, j) => assert.ok(Math.abs(v - want[j]) <= 1e-5 * (1 + Math.abs(want[j])), `[${j}] ${v} against cpu's ${want[j]}`));
    x.dispose();
  });

  it('a causal attention\'s gradients (batched products both ways) agree with cpu\'s', async () => {
    const grads = async () => {
      const [B, H, T, D] = [2, 3, 32, 16]; // slices of 32 × 16 × 32: over MIN_SLICE_FMAS, so per batch entry
      const q = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 7), k = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 8), v = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 9);
      const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
      const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
        const s = tf.add(tf.mul(tf.matMul(qq, kk, false, true), 1 / Math.sqrt(D)), tf.mul(tf.sub(1, mask), -1e9));
        return tf.sum(tf.mul(tf.matMul(tf.softmax(s), vv), tf.mod(tf.reshape(tf.range(0, B * H * T * D), [B, H, T, D]), 5)));
      };
      const g = tf.grads(f)([q, k, v]);
      const out = await Promise.all(g.map(async (t) => Array.from(await t.data())));
      tf.dispose([q, k, v, mask, ...g]);
      return out;
    };
    await useBackend('cpu');
    const want = await grads();
    await useBackend('wasm');
    const before = wasmMatMulStats.perBatch;
    const got = await grads();
    // forward: scores and p·v; backward: two products for each
    assert.ok(wasmMatMulStats.perBatch - before >= 6, `${wasmMatMulStats.perBatch - before} products per batch entry`);
    got.forEach((g, i) => g.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) <= 1e-4 * (1 + Math.abs(want[i][j])), `grad ${i}[${j}]: ${x} against ${want[i][j]}`)));
  });
});
