import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { loadAdapter } from '../src/adapters/peft.js';
import { parameterTable, countParameters } from '../src/adapters/accounting.js';
import { AdapterConfigError } from '../src/adapters/config.js';
import { Trainer } from '../src/train/trainer.js';
import type { Model } from '../src/models/types.js';
import { FIXTURES, relErr, testBackend } from './helpers.js';

const ids = [[5, 17, 99, 3, 250, 11, 7, 42], [8, 300, 21, 64, 2, 9, 1, 1]];
const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]];
const logitsOf = (m: Model) => { const { logits } = m.forward({ inputIds: ids, attentionMask: mask }); const d = logits.dataSync().slice(); logits.dispose(); return d; };

describe('ShareLoRA adapters', () => {
  const models: Record<string, Model> = {};
  before(async () => {
    await testBackend();
    for (const f of ['gpt2', 'roberta', 'llama']) models[f] = loadModelFromDir(join(FIXTURES, f, 'model'));
  });

  for (const share of ['none', 'A', 'B', 'AB'] as const) {
    it(`share ${share}: fresh adapter is the identity, ties are one variable, merge equals unmerged, save/load round-trips`, async () => {
      const m = models.llama;
      const base = logitsOf(m);
      const ad = injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'v', 'down'], share, seed: 3 });
      try {
        assert.ok(relErr(logitsOf(m), base) === 0, 'B = 0 at init, so the output is unchanged');
        const qs = ad.modules.filter((x) => x.role === 'self_attn.q_proj');
        assert.equal(qs.length, 3);
        assert.equal(qs[1].hook.A === qs[0].hook.A, share === 'A' || share === 'AB');
        assert.equal(qs[2].hook.B === qs[0].hook.B, share === 'B' || share === 'AB');
        assert.notEqual(ad.modules.find((x) => x.role === 'self_attn.v_proj')!.hook.A, qs[0].hook.A, 'q and v never share');
        const dims = [{ name: 'q', dIn: 64, dOut: 64 }, { name: 'v', dIn: 64, dOut: 32 }, { name: 'down', dIn: 172, dOut: 64 }];
        assert.equal(ad.trainableParameterCount(), countParameters(3, dims, 4, share));
        // make B non-zero with one training step, then check merge algebra
        const tr = new Trainer(m, ad, { lr: 0.05 });
        const labels = ids.map((r, i) => r.map((t, j) => (mask[i][j] ? t : -100)));
        await tr.step({ inputIds: ids, attentionMask: mask, labels });
        const adapted = logitsOf(m);
        assert.ok(relErr(adapted, base) > 1e-4, 'training changed the output');
        ad.merge();
        assert.ok(relErr(logitsOf(m), adapted) < 1e-5, 'merged equals unmerged');
        ad.unmerge();
        assert.ok(relErr(logitsOf(m), adapted) < 1e-5);
        const dir = mkdtempSync(join(tmpdir(), 'sl-ad-'));
        await ad.save(dir);
        const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
        assert.equal(cfg.sharelora.share, share);
        assert.equal(cfg.peft_type, 'LORA');
        ad.unload();
        assert.ok(relErr(logitsOf(m), base) === 0, 'unload restores the base model');
        const back = await loadAdapter(m, dir);
        assert.equal(back.share, share);
        assert.equal(back.trainableParameterCount(), countParameters(3, dims, 4, share));
        assert.ok(relErr(logitsOf(m), adapted) === 0, 'save/load is exact');
        back.unload();
        tr.dispose();
      } finally {
        if (ad.modules.length) ad.unload();
      }
    });
  }

  it('a PEFT folder without the sharelora key is re-tied from identical copies', async () => {
    const ad = await loadAdapter(models.roberta, join(FIXTURES, 'roberta', 'shareA'));
    assert.equal(ad.share, 'A');
    ad.unload();
    const lo = await loadAdapter(models.roberta, join(FIXTURES, 'roberta', 'lora'));
    assert.equal(lo.share, 'none');
    lo.unload();
  });

  it('GPT-2 short names q/k/v adapt the fused c_attn, as PEFT does', async () => {
    const ad = injectShareLoRA(models.gpt2, { r: 2, targets: ['q', 'v'], share: 'A' });
    assert.deepEqual([...new Set(ad.modules.map((m) => m.role))], ['attn.c_attn']);
    assert.deepEqual(ad.modules[0].hook.B.shape, [192, 2]);
    ad.unload();
    const byName = injectShareLoRA(models.gpt2, { r: 2, targets: ['c_attn'], share: 'none' });
    assert.equal(byName.modules.length, 3);
    byName.unload();
  });

  it('RoBERTa saves modules_to_save (the classifier) and can train it', async () => {
    const ad = injectShareLoRA(models.roberta, { r: 4, targets: ['query', 'value'], share: 'A' });
    const names = [...ad.namedParameters().keys()];
    assert.ok(names.includes('base_model.model.classifier.modules_to_save.default.out_proj.weight'));
    // 2 targets: A once (4·64) each + 3 layers of B (64·4) each, plus the head (64·64+64+3·64+3)
    assert.equal(ad.trainableParameterCount(), 2 * (256 + 3 * 256) + 4160 + 195);
    ad.unload();
  });

  it('bad options and unknown targets give errors that name the field and the choices', async () => {
    assert.throws(() => injectShareLoRA(models.llama, { targets: ['query'] }), (e: Error) => e instanceof AdapterConfigError && /targets/.test(e.message) && /q_proj/.test(e.message));
    assert.throws(() => injectShareLoRA(models.llama, { share: 'C' as never }), /share: must be one of/);
    assert.throws(() => injectShareLoRA(models.llama, { r: 0 }), /r: must be a positive integer/);
    const ad = injectShareLoRA(models.llama, { targets: ['q'] });
    assert.throws(() => injectShareLoRA(models.llama, { targets: ['q'] }), /already has an adapter/);
    ad.unload();
  });

  it('loading an adapter made for another model names the tensor and shape', async () => {
    await assert.rejects(loadAdapter(models.llama, join(FIXTURES, 'roberta', 'lora')), /matched no projection|missing|shape/);
    await assert.rejects(loadAdapter(models.gpt2, join(FIXTURES, 'llama', 'lora')), /targets/);
  });
});

describe('parameter accounting', () => {
  it("reproduces the paper-scale numbers (RoBERTa-base q,v r=8)", async () => {
    const rows = parameterTable('roberta-base', { r: 8, targets: ['q', 'v'] }).objects() as Array<{ variant: string; trainable: number; optimizerBytes: number }>;
    const by = Object.fromEntries(rows.map((r) => [r.variant, r.trainable]));
    assert.deepEqual(by, { LoRA: 294912, ShareA: 159744, ShareB: 159744, ShareAB: 24576 });
    assert.equal(rows.find((r) => r.variant === 'ShareA')!.optimizerBytes, 159744 * 8);
  });

  it('LLaMA-7B all linears r=64: ShareA saves 44%', async () => {
    const rows = parameterTable('llama-7b', { r: 64, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] }).objects() as Array<{ variant: string; vsLoRA: number }>;
    assert.equal(Math.round(rows.find((r) => r.variant === 'ShareA')!.vsLoRA * 1000), -441);
  });

  it('a live model table equals the adapter it describes', async () => {
    await testBackend();
    const before = tf.memory().numTensors;
    const m = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
    const rows = parameterTable(m, { r: 4, targets: ['q', 'k', 'v'] }).objects() as Array<{ share: 'none' | 'A' | 'B' | 'AB'; trainable: number }>;
    for (const row of rows) {
      const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'k', 'v'], share: row.share });
      assert.equal(ad.trainableParameterCount(), row.trainable);
      ad.unload();
    }
    m.dispose();
    assert.equal(tf.memory().numTensors, before, 'every adapter unloaded and the model disposed leave no tensor behind');
  });

  it('disposing a model with an adapter still on frees the adapter too (a model per run leaked every run\'s adapter)', async () => {
    await testBackend();
    const before = tf.memory().numTensors;
    for (const dir of ['gpt2', 'llama']) {
      const m = loadModelFromDir(join(FIXTURES, dir, 'model'), { task: 'seq-cls', numLabels: 2, seed: 0 });
      const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'v'], share: 'A' });
      assert.ok(ad.trainableParameterCount() > 0);
      m.dispose();
      assert.equal(ad.isUnloaded, true);
      assert.equal(tf.memory().numTensors, before, `${dir}: tensors left after model.dispose()`);
    }
  });
});

describe('mergeAndUnload', () => {
  it('keeps the adapted output with no adapter left', async () => {
    await testBackend();
    const m = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
    const ad = await loadAdapter(m, join(FIXTURES, 'roberta', 'shareA'));
    const adapted = logitsOf(m);
    ad.mergeAndUnload();
    assert.ok(relErr(logitsOf(m), adapted) < 1e-5);
    assert.ok([...m.linears.values()].every((l) => !l.lora));
    assert.equal(ad.trainableParameterCount(), 0);
    m.dispose();
  });
});

describe('two models', () => {
  it('carry adapters at once (variable names stay unique)', async () => {
    await testBackend();
    const a = loadModelFromDir(join(FIXTURES, 'gpt2', 'model')), b = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
    const x = injectShareLoRA(a, { r: 2, targets: ['c_attn'] }), y = injectShareLoRA(b, { r: 2, targets: ['c_attn'] });
    assert.deepEqual([...x.namedParameters().keys()], [...y.namedParameters().keys()], 'PEFT names are the same');
    x.unload(); y.unload(); a.dispose(); b.dispose();
  });
});
