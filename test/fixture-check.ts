/**
 * One adapter against one case of a PyTorch fixture (expected.safetensors):
 * logits and loss on the fixture's batch, every gradient under PEFT's name
 * (a tied tensor once, under its first layer's name), optionally the 10-step
 * AdamW curve. Shared by the share-group tests at both ends of the knob and
 * by the intermediate-grouping fixture test.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { ShareLoraAdapter } from '../src/adapters/sharelora.js';
import type { Model } from '../src/models/types.js';
import { lossAndGrads } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import { relErr } from './helpers.js';

type Tensors = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;

export function fixtureBatch(exp: Tensors, family: string) {
  const ids = exp.get('input_ids')!, mask = exp.get('attention_mask')!, labels = exp.get('labels')!;
  const [B, T] = ids.shape;
  const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
  return { inputIds: rows(ids), attentionMask: rows(mask), labels: family === 'roberta' ? Array.from(labels.data) : rows(labels) };
}

export async function checkAgainstFixture(model: Model, adapter: ShareLoraAdapter, exp: Tensors, family: string, name: string, o: { curve?: boolean; tol?: { logits: number; grads: number; curve?: number } } = {}): Promise<void> {
  const tol = o.tol ?? { logits: 1e-5, grads: 1e-4 };
  const batch = fixtureBatch(exp, family);
  const mask = exp.get('attention_mask')!;
  const V = exp.get('base_logits')!.shape[2];
  const keep = (i: number) => family === 'roberta' || mask.data[Math.floor(i / V)] === 1;
  const { logits } = model.forward(batch);
  const errL = relErr(await logits.data(), exp.get(`${name}.logits`)!.data, keep);
  logits.dispose();
  assert.ok(errL < tol.logits, `${name} logits rel err ${errL}`);
  const { loss, grads } = await lossAndGrads(model, adapter, batch);
  try {
    const want = exp.get(`${name}.loss`)!.data[0];
    assert.ok(Math.abs(loss - want) / Math.abs(want) < tol.logits, `${name} loss ${loss} vs ${want}`);
    const names = [...exp.keys()].filter((k) => k.startsWith(`${name}.grad.`)).map((k) => k.slice(`${name}.grad.`.length)).sort();
    assert.deepEqual([...grads.keys()].sort(), names, 'gradient names (a tied tensor once, under its first layer)');
    for (const k of names) {
      const err = relErr(await grads.get(k)!.data(), exp.get(`${name}.grad.${k}`)!.data);
      assert.ok(err < tol.grads, `${name} grad ${k} rel err ${err}`);
    }
  } finally {
    tf.dispose([...grads.values()]);
  }
  if (o.curve) {
    const trainer = new Trainer(model, adapter, { lr: 1e-2 });
    const curve: number[] = [];
    for (let i = 0; i < 10; i++) curve.push(await trainer.step(batch));
    trainer.dispose();
    const err = relErr(curve, exp.get(`${name}.train_losses`)!.data);
    assert.ok(err < (tol.curve ?? tol.grads), `${name} AdamW curve rel err ${err}`);
  }
}
