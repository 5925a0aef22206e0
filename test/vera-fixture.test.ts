/**
 * VeRA against PyTorch + PEFT: the adapters PEFT saved (projections included,
 * and without them, redrawn from projection_prng_key by our copy of torch's
 * generator) load here and give PEFT's logits, loss, every gradient and the
 * 10-step AdamW curve, at the LoRA reference tests' tolerances. The fixture is
 * made where torch + transformers + peft exist (scripts/gen_vera_fixture.py);
 * until then that part skips, saying so, and the same checking code runs on
 * a fixture this file makes from our own VeRA (save, load, compare), so the
 * path is exercised either way.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapter } from '../src/adapters/peft.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { veraProjection } from '../src/adapters/vera.js';
import { readSafetensors } from '../src/models/safetensors.js';
import { loadModelFromDir } from '../src/models/load.js';
import type { Model } from '../src/models/types.js';
import { lossAndGrads } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import { FIXTURES, relErr, testBackend } from './helpers.js';
import { checkAgainstFixture, fixtureBatch } from './fixture-check.js';

type Tensors = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;
const DIR = join(FIXTURES, 'vera');
const MANIFEST = join(DIR, 'manifest.json');
const missing = existsSync(MANIFEST) ? false
  : 'no fixture at test/fixtures/hf-reference/vera yet: it is made on a machine with torch, transformers and peft by `python3 scripts/gen_vera_fixture.py test/fixtures/hf-reference 1234` (the local self-consistency test below runs the same checks meanwhile)';

interface Manifest { families: Record<string, { targets: string[]; r: number; projection_prng_key: number; vera_A: number[]; vera_B: number[]; trainable_params: number }> }

/** One VeRA folder against one fixture: what was loaded, then logits, loss, gradients and (optionally) the AdamW curve. */
async function checkVeraFolder(model: Model, dir: string, exp: Tensors, family: string, o: { trainable: number; tol: { logits: number; grads: number; curve?: number }; curve: boolean }) {
  const ad = await loadAdapter(model, dir);
  try {
    assert.equal(ad.method, 'vera');
    assert.equal(ad.trainableParameterCount(), o.trainable, 'trainable parameters as PEFT counts them');
    await checkAgainstFixture(model, ad, exp, family, 'vera', { tol: o.tol, curve: o.curve });
  } finally {
    ad.unload();
  }
}

describe('VeRA matches HF + PEFT', { skip: missing }, () => {
  const manifest = missing ? { families: {} } : JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
  let tol: { logits: number; grads: number; curve?: number } = { logits: 1e-5, grads: 1e-4 };
  before(async () => {
    const backend = await testBackend();
    if (backend !== 'cpu' && backend !== 'wasm') tol = { logits: 1e-3, grads: 1e-3, curve: 1e-3 };
  });
  for (const [family, info] of Object.entries(manifest.families)) {
    describe(family, () => {
      let model: Model;
      let exp: Tensors;
      before(() => {
        model = loadModelFromDir(join(FIXTURES, family, 'model'));
        exp = readSafetensors(join(DIR, family, 'expected.safetensors')).tensors;
      });
      it(`PEFT's folder (save_projection=True): logits, loss, every gradient, 10-step AdamW curve`, async () => {
        await checkVeraFolder(model, join(DIR, family, 'vera'), exp, family, { trainable: info.trainable_params, tol, curve: true });
      });
      it('without saved projections: redrawn from projection_prng_key, the same logits and gradients', async () => {
        await checkVeraFolder(model, join(DIR, family, 'vera-noproj'), exp, family, { trainable: info.trainable_params, tol, curve: false });
      });
      it(`torch's generator reproduced: vera_A ${JSON.stringify(info.vera_A)} and vera_B ${JSON.stringify(info.vera_B)} bit for bit`, () => {
        const saved = readSafetensors(join(DIR, family, 'vera', 'adapter_model.safetensors')).tensors;
        const A = saved.get('base_model.vera_A')!, B = saved.get('base_model.vera_B')!;
        assert.deepEqual(A.shape, info.vera_A);
        assert.deepEqual(B.shape, info.vera_B);
        const exact = (['separate', 'fma'] as const).filter((rounding) => {
          const p = veraProjection(info.projection_prng_key, info.r, info.vera_A[1], info.vera_B[0], rounding);
          return p.A.every((x, i) => x === A.data[i]) && p.B.every((x, i) => x === B.data[i]);
        });
        const p = veraProjection(info.projection_prng_key, info.r, info.vera_A[1], info.vera_B[0]);
        assert.ok(exact.length > 0, `neither rounding reproduces torch's draw (max |diff| in A ${relErr(p.A, A.data)} relative)`);
        console.log(`# ${family}: torch's uniform_ reproduced with ${exact.join(' and ')} rounding`);
      });
    });
  }
});

describe('VeRA fixture checks, on a fixture made here from our own VeRA (self-consistency)', () => {
  for (const family of ['llama', 'roberta']) {
    it(`${family}: our saved folder loads back and the fixture checks pass against the adapter that saved it`, async () => {
      const backend = await testBackend();
      const tol = backend === 'cpu' || backend === 'wasm' ? { logits: 1e-5, grads: 1e-4 } : { logits: 1e-3, grads: 1e-3, curve: 1e-3 };
      const model = loadModelFromDir(join(FIXTURES, family, 'model'));
      const lora = readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
      const exp: Tensors = new Map(['input_ids', 'attention_mask', 'labels', 'base_logits'].map((k) => [k, lora.get(k)!]));
      const targets = family === 'llama' ? ['q_proj', 'v_proj', 'down_proj'] : ['query', 'value', 'intermediate.dense'];
      const ad = injectShareLoRA(model, { method: 'vera', r: 8, targets, projectionSeed: 4321, init: 'random', seed: 3 });
      const batch = fixtureBatch(exp, family);
      // b = 1 everywhere would hide a b that is never applied: give every projection its own
      for (const [name, v] of ad.namedParameters()) if (name.endsWith('vera_lambda_b.default')) tf.tidy(() => v.assign(tf.add(1, tf.mul(0.3, tf.sin(tf.range(0, v.size))))));
      const dir = mkdtempSync(join(tmpdir(), 'sl-vera-'));
      await ad.save(dir);
      const { logits } = model.forward(batch);
      exp.set('vera.logits', { shape: logits.shape, data: await logits.data() as Float32Array });
      logits.dispose();
      const { loss, grads } = await lossAndGrads(model, ad, batch);
      exp.set('vera.loss', { shape: [1], data: Float32Array.of(loss) });
      for (const [k, g] of grads) exp.set(`vera.grad.${k}`, { shape: g.shape, data: await g.data() as Float32Array });
      tf.dispose([...grads.values()]);
      const trainer = new Trainer(model, ad, { lr: 1e-2 });
      const curve: number[] = [];
      for (let i = 0; i < 10; i++) curve.push(await trainer.step(batch));
      trainer.dispose();
      exp.set('vera.train_losses', { shape: [10], data: Float32Array.from(curve) });
      const trainable = ad.trainableParameterCount();
      ad.unload();
      assert.ok(relErr(exp.get('vera.logits')!.data, exp.get('base_logits')!.data) > 1e-3, 'the adapter changes the output, so the check can fail');
      await checkVeraFolder(model, dir, exp, family, { trainable, tol, curve: true });
    });
  }
});
