/**
 * Calls that used to run and do the wrong thing quietly: resuming a
 * checkpoint onto another base model of the same shapes, saving an adapter
 * after unload() (an empty folder over a trained one), stepping a disposed
 * Trainer (AdamW restarted from zero moments).
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapter, saveAdapter } from '../../src/adapters/peft.js';
import { AdapterUnloadedError, injectShareLoRA, ShareLoraAdapter } from '../../src/adapters/sharelora.js';
import { CheckpointError } from '../../src/util/errors.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import type { Batch } from '../../src/train/loss.js';
import { Trainer } from '../../src/train/trainer.js';
import { FIXTURES, testBackend } from '../helpers.js';

const ROBERTA = join(FIXTURES, 'roberta', 'model');
const row = (s: number) => Array.from({ length: 8 }, (_, t) => (s * 97 + t * 31) % 500 + 3);
const batch = (s: number): Batch => ({ inputIds: [row(s), row(s + 50)], labels: [s % 3, (s + 2) % 3] });

describe('misuse that used to run', () => {
  let model: Model;
  const tmp = mkdtempSync(join(tmpdir(), 'sl-misuse-'));
  const live: ShareLoraAdapter[] = [];
  const keep = (a: ShareLoraAdapter) => { live.push(a); return a; };
  afterEach(() => { for (const a of live.splice(0)) a.unload(); });
  before(async () => {
    await testBackend();
    model = loadModelFromDir(ROBERTA);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('Trainer.resume refuses a different base model of the same shapes, and accepts the one trained on', async () => {
    const dir = join(tmp, 'ckpt');
    // RoBERTa trains its classifier too (modules_to_save): those weights are not the base and must not count
    const ad = keep(injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A', shareGroups: 2, seed: 3 }));
    const tr = new Trainer(model, ad, { lr: 1e-2 });
    await tr.step(batch(0));
    await tr.step(batch(1));
    await tr.save(dir);
    tr.dispose();
    ad.unload();
    const state = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8'));
    assert.match(state.base.config, /^[0-9a-f]{16}$/);
    assert.deepEqual(state.base.exclude, ['classifier.dense.bias', 'classifier.dense.weight', 'classifier.out_proj.bias', 'classifier.out_proj.weight']);

    const same = loadModelFromDir(ROBERTA);
    const back = await Trainer.resume(dir, same);
    assert.deepEqual((back.adapter as ShareLoraAdapter).shareGroups, [[0, 1], [2]]);
    back.dispose();
    (back.adapter as ShareLoraAdapter).unload();
    same.dispose();

    // one base weight changed by 0.1%: every shape still fits
    const tuned = loadModelFromDir(ROBERTA);
    const ref = tuned.weights().get('roberta.encoder.layer.1.output.dense.weight')!;
    const w = ref.get();
    ref.set(tf.mul(w, 1.001));
    w.dispose();
    const tensors = tf.memory().numTensors;
    await assert.rejects(Trainer.resume(dir, tuned), (e: Error) => e instanceof CheckpointError && e.message.startsWith(join(dir, 'trainer.json'))
      && /was saved while training another base model: the roberta model given to resume has the same shapes but different weights/.test(e.message));
    assert.ok([...tuned.linears.values()].every((l) => !l.lora), 'no adapter left behind');
    assert.equal(tf.memory().numTensors, tensors);

    // the same tensors under another architecture number (layer_norm_eps)
    const eps = join(tmp, 'eps');
    mkdirSync(eps);
    copyFileSync(join(ROBERTA, 'model.safetensors'), join(eps, 'model.safetensors'));
    writeFileSync(join(eps, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(ROBERTA, 'config.json'), 'utf8')), layer_norm_eps: 1e-6 }));
    const other = loadModelFromDir(eps);
    await assert.rejects(Trainer.resume(dir, other), /has a different architecture \(config [0-9a-f]{16} when saved, [0-9a-f]{16} now\)/);
    other.dispose();

    // a checkpoint without the fingerprint (written before it existed, or with it deleted) resumes only when asked to
    delete state.base;
    writeFileSync(join(dir, 'trainer.json'), JSON.stringify(state));
    await assert.rejects(Trainer.resume(dir, tuned), (e: Error) => e instanceof CheckpointError && /records no "base"/.test(e.message));
    const old = await Trainer.resume(dir, tuned, { allowUnknownBase: true });
    old.dispose();
    (old.adapter as ShareLoraAdapter).unload();
    state.base = { config: 'nope', weights: '0123456789abcdef', exclude: [] };
    writeFileSync(join(dir, 'trainer.json'), JSON.stringify(state));
    await assert.rejects(Trainer.resume(dir, tuned), /"base.config" must be 16 hex digits, got "nope"/);
    tuned.dispose();
  });

  it('adapter.save() after unload() or mergeAndUnload() is refused and leaves the saved folder as it was', async () => {
    const dir = join(tmp, 'adapter');
    const ad = keep(injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A', init: 'random' }));
    await ad.save(dir);
    const before = readFileSync(join(dir, 'adapter_model.safetensors'));
    ad.unload();
    assert.ok(ad.isUnloaded);
    await assert.rejects(ad.save(dir), (e: Error) => e instanceof AdapterUnloadedError && /cannot save to .*adapter: this adapter was unloaded/.test(e.message));
    await assert.rejects(saveAdapter(ad, dir), AdapterUnloadedError);
    assert.throws(() => ad.merge(), AdapterUnloadedError);
    assert.ok(readFileSync(join(dir, 'adapter_model.safetensors')).equals(before));
    const merged = keep(await loadAdapter(model, dir));
    merged.mergeAndUnload();
    await assert.rejects(merged.save(dir), AdapterUnloadedError);
    assert.ok(readFileSync(join(dir, 'adapter_model.safetensors')).equals(before));
    model.dispose();
    model = loadModelFromDir(ROBERTA); // mergeAndUnload folded the adapter into this one
  });

  it('trainer.step() after dispose() is refused, including a step queued before it', async () => {
    const ad = keep(injectShareLoRA(model, { r: 4, targets: ['q'], share: 'A' }));
    const tr = new Trainer(model, ad, { lr: 1e-2 });
    await tr.step(batch(0));
    const queued = tr.step(batch(1));
    tr.dispose();
    await assert.rejects(queued, /this Trainer was disposed/);
    await assert.rejects(tr.step(batch(2)), /this Trainer was disposed \(trainer\.dispose\(\) freed its optimizer state\); create a new Trainer, or Trainer\.resume\(\) from a checkpoint/);
    await assert.rejects(tr.save(join(tmp, 'disposed')), /this Trainer was disposed/);
    assert.equal(tr.optimizer.m.size, 0, 'no moments were re-created from zero');
  });
});
