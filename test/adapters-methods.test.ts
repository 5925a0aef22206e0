/**
 * LoRA-FA, VeRA and Tied-LoRA: options, initialisation, the algebra against
 * LoRA (which test/reference.test.ts checks against PyTorch), save/load
 * round trips and the accounting formulas. VeRA against PEFT itself is
 * test/vera-fixture.test.ts.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { injectShareLoRA, type ShareLoraAdapter } from '../src/adapters/sharelora.js';
import { loadAdapter } from '../src/adapters/peft.js';
import { countVariant, paperTable, parameterTable, type AccountingRow } from '../src/adapters/accounting.js';
import { AdapterConfigError } from '../src/adapters/config.js';
import { MT19937, torchUniform, veraProjection } from '../src/adapters/vera.js';
import { readSafetensors, serializeSafetensors } from '../src/models/safetensors.js';
import { lossAndGrads } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import type { Model } from '../src/models/types.js';
import { FIXTURES, relErr, testBackend } from './helpers.js';
import { fixtureBatch } from './fixture-check.js';

const ids = [[5, 17, 99, 3, 250, 11, 7, 42], [8, 300, 21, 64, 2, 9, 1, 1]];
const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]];
const labels = ids.map((r, i) => r.map((t, j) => (mask[i][j] ? t : -100)));
const batch = { inputIds: ids, attentionMask: mask, labels };
const logitsOf = (m: Model) => { const { logits } = m.forward({ inputIds: ids, attentionMask: mask }); const d = logits.dataSync().slice(); logits.dispose(); return d; };
const values = (v: tf.Tensor) => v.dataSync().slice() as Float32Array;
const noHooks = (m: Model) => [...m.linears.values()].every((l) => !l.lora);

/** every trainable and frozen tensor of an adapter, by name */
const snapshot = (ad: ShareLoraAdapter) => new Map([...ad.namedParameters(), ...ad.frozenParameters()].map(([k, v]) => [k, values(v)]));

/** random values into every vector (and optionally every B), so that each factor changes the output */
function scramble(ad: ShareLoraAdapter, seed: number): void {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 - 0.5; };
  for (const [name, v] of ad.namedParameters()) {
    if (name.includes('modules_to_save')) continue;
    tf.tidy(() => v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => (name.includes('lambda_b') || name.includes('lora_v') || name.includes('lora_u') ? 1 : 0) + 0.5 * rnd()), v.shape)));
  }
}

describe('LoRA-FA, VeRA and Tied-LoRA', () => {
  const models: Record<string, Model> = {};
  before(async () => {
    await testBackend();
    for (const f of ['gpt2', 'roberta', 'llama']) models[f] = loadModelFromDir(join(FIXTURES, f, 'model'));
  });

  it('options: method-only options, misspellings, Tied-LoRA patterns and absurd ranks are refused, naming the field, with no hook left', () => {
    const m = models.llama;
    const refuse = (o: object, re: RegExp) => {
      assert.throws(() => injectShareLoRA(m, o as never), (e: Error) => re.test(e.message), JSON.stringify(o));
      assert.ok(noHooks(m), `nothing injected by ${JSON.stringify(o)}`);
    };
    refuse({ method: 'vera', share: 'A' }, /share: does not apply to method 'vera'.*by construction/);
    refuse({ method: 'vera', alpha: 8 }, /alpha: does not apply to method 'vera'.*no scaling/);
    refuse({ method: 'lora', dInitial: 0.1 }, /dInitial: does not apply to method 'lora'/);
    refuse({ method: 'lora-fa', tiedTrain: 'VBUA' }, /tiedTrain: does not apply/);
    refuse({ method: 'tied-lora', share: 'AB' }, /share: does not apply to method 'tied-lora'/);
    refuse({ method: 'tied-lora', tiedTrain: 'vbua' }, /tiedTrain: must spell v, B, u, A/);
    refuse({ method: 'tied-lora', tiedTrain: 'ABUV' }, /tiedTrain: must spell/);
    refuse({ method: 'dora' }, /method: must be one of 'lora', 'lora-fa', 'vera', 'tied-lora'/);
    refuse({ method: 'vera', init: 'gaussian' }, /init: 'gaussian' has no meaning for VeRA/);
    refuse({ method: 'vera', projectionSeed: -1 }, /projectionSeed: must be a non-negative integer/);
    refuse({ methd: 'vera' }, /option "methd" is not an option; did you mean "method"/);
    refuse({ dInitail: 0.1, method: 'vera' }, /"dInitail" is not an option; did you mean "dInitial"/);
    // issue 24 item 11: r = 1e9 was a raw RangeError, r = 1e5 half a billion parameters
    for (const r of [1e9, 1e5, 33]) refuse({ r, targets: ['q', 'v'] }, /^r: .* model\.layers\.0\.self_attn\.(q|v)_proj .*min\(d_in, d_out\) = (64|32); pass r ≤ 32/);
    refuse({ method: 'lora-fa', r: 1e9 }, /^r: /);
    refuse({ method: 'tied-lora', r: 1e5 }, /^r: /);
    refuse({ method: 'vera', r: 1e9 }, /^r: 1000000000 would make VeRA's frozen projections .* r ≤ 1048576 here/);
    const ok = injectShareLoRA(m, { r: 32, targets: ['q', 'v'] });
    ok.unload();
    const wide = injectShareLoRA(m, { method: 'vera', r: 300, targets: ['q', 'v'] });
    assert.equal(wide.trainableParameterCount(), 3 * (300 + 64) + 3 * (300 + 32), 'VeRA may use r above the widths');
    wide.unload();
  });

  it('a folder with r above a layer\'s widths (PEFT accepts one) still loads: its tensors bound the rank', async () => {
    const m = models.llama;
    const r = 40; // v_proj is 64 -> 32
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (let l = 0; l < 3; l++) {
      for (const [p, dOut] of [['q_proj', 64], ['v_proj', 32]] as const) {
        const k = `base_model.model.model.layers.${l}.self_attn.${p}`;
        tensors.set(`${k}.lora_A.weight`, { dtype: 'F32', shape: [r, 64], data: Float32Array.from({ length: r * 64 }, (_, i) => Math.sin(i + l) / 8) });
        tensors.set(`${k}.lora_B.weight`, { dtype: 'F32', shape: [dOut, r], data: Float32Array.from({ length: dOut * r }, (_, i) => Math.cos(i - l) / 8) });
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'sl-bigr-'));
    writeFileSync(join(dir, 'adapter_model.safetensors'), serializeSafetensors(tensors));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }));
    const ad = await loadAdapter(m, dir);
    assert.equal(ad.trainableParameterCount(), 3 * r * (64 + 64) + 3 * r * (64 + 32));
    ad.unload();
    assert.throws(() => injectShareLoRA(m, { r, targets: ['q_proj', 'v_proj'] }), /^AdapterConfigError: r: 40 is more than/);
  });

  it('torch generator: MT19937 and uniform_ reproduce torch.manual_seed(0); torch.rand(4)', () => {
    assert.equal(new MT19937(5489).next(), 3499211612, 'std::mt19937 default seed');
    const u = torchUniform(new MT19937(0), 4, 0, 1);
    assert.deepEqual([...u].map((x) => x.toFixed(4)), ['0.4963', '0.7682', '0.0885', '0.1320']);
    const { A, B } = veraProjection(0, 4, 10, 6);
    const a = Math.sqrt(6 / 10), b = Math.sqrt(6 / 4);
    assert.ok(A.every((x) => Math.abs(x) <= a) && B.every((x) => Math.abs(x) <= b), 'kaiming bounds sqrt(6 / fan_in)');
    assert.ok(Math.max(...A.map(Math.abs)) > 0.8 * a, 'and they are used');
  });

  it('LoRA-FA: A is frozen at its initialisation and B trains; with share A one frozen A per role', async () => {
    const m = models.llama;
    const plain = injectShareLoRA(m, { method: 'lora-fa', targets: ['q'] });
    assert.equal(plain.share, 'none', 'LoRA-FA as published unless a share is asked for');
    plain.unload();
    for (const share of ['none', 'A'] as const) {
      const ad = injectShareLoRA(m, { method: 'lora-fa', r: 4, alpha: 8, targets: ['q', 'v'], share, seed: 2 });
      try {
        assert.ok([...ad.namedParameters().keys()].every((k) => k.includes('lora_B')), 'only B trains');
        const frozen = [...ad.frozenParameters()];
        assert.equal(frozen.length, share === 'A' ? 2 : 6);
        assert.ok(frozen.every(([k, v]) => k.includes('lora_A') && !v.trainable));
        const qs = ad.modules.filter((x) => x.role === 'self_attn.q_proj');
        assert.equal(qs[1].hook.A === qs[0].hook.A, share === 'A');
        assert.equal(ad.trainableParameterCount(), 3 * 4 * 64 + 3 * 4 * 32);
        assert.equal(ad.frozenParameterCount(), (share === 'A' ? 1 : 3) * 4 * (64 + 64));
        const before = snapshot(ad);
        const tr = new Trainer(m, ad, { lr: 0.05 });
        await tr.step(batch);
        await tr.step(batch);
        tr.dispose();
        for (const [k, v] of snapshot(ad)) {
          if (k.includes('lora_A')) assert.deepEqual(v, before.get(k), `${k} did not move`);
          else assert.ok(relErr(v, before.get(k)!) > 0, `${k} trained`);
        }
      } finally {
        ad.unload();
      }
    }
  });

  it('VeRA: PEFT initialisation (b = 0, d = dInitial), projections as wide as the widest target from the seed, one pair for all', () => {
    const m = models.llama;
    const base = logitsOf(m);
    const ad = injectShareLoRA(m, { method: 'vera', r: 8, targets: ['q', 'v', 'down'], projectionSeed: 7, dInitial: 0.25 });
    try {
      assert.deepEqual(logitsOf(m), base, 'b = 0: the base model at first');
      assert.equal(ad.scaling, 1);
      const P = ad.frozenParameters();
      assert.deepEqual([...P.keys()], ['base_model.vera_A.default', 'base_model.vera_B.default']);
      const want = veraProjection(7, 8, 172, 64);
      assert.deepEqual(P.get('base_model.vera_A.default')!.shape, [8, 172], 'A [r, max d_in] (down_proj reads 172)');
      assert.deepEqual(values(P.get('base_model.vera_A.default')!), want.A);
      assert.deepEqual(values(P.get('base_model.vera_B.default')!), want.B);
      assert.ok(ad.modules.every((x) => x.hook.A === P.get('base_model.vera_A.default')), 'one A for every projection');
      const named = ad.namedParameters();
      assert.equal(named.size, 2 * 9);
      for (const [k, v] of named) {
        if (k.endsWith('vera_lambda_d.default')) assert.ok(values(v).every((x) => x === Math.fround(0.25)), k);
        else assert.ok(k.endsWith('vera_lambda_b.default') && values(v).every((x) => x === 0), k);
      }
      // L·(r + d_out) per module type: q 64, v 32, down 64
      assert.equal(ad.trainableParameterCount(), 3 * (8 + 64) + 3 * (8 + 32) + 3 * (8 + 64));
      assert.equal(ad.frozenParameterCount(), 8 * (172 + 64));
    } finally {
      ad.unload();
    }
  });

  for (const [family, targets] of [['llama', ['q', 'v', 'down']], ['gpt2', ['c_attn', 'c_proj']]] as const) {
    for (const spec of [{ method: 'vera' as const, r: 8 }, { method: 'tied-lora' as const, r: 4, alpha: 8, tiedTrain: 'VBUA' }, { method: 'tied-lora' as const, r: 4, alpha: 8, tiedTrain: 'VbUa', shareGroups: [[0, 2], [1]] }]) {
      it(`${family} ${spec.method}${'tiedTrain' in spec ? ` ${spec.tiedTrain}` : ''}: logits and gradients equal a per-layer LoRA holding the folded factors (chain rule)`, async () => {
        const m = models[family];
        const exp = readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
        const fb = fixtureBatch(exp, family);
        const ad = injectShareLoRA(m, { ...spec, targets: [...targets], init: 'random', seed: 4, modulesToSave: [] });
        scramble(ad, 11);
        const names = new Map([...ad.namedParameters(), ...ad.frozenParameters()].map(([k, v]) => [v, k]));
        // fold by hand: A'_l = diag(u_l)·A[:, :d_in], B'_l = diag(v_l)·B[:d_out, :]
        const mods = ad.modules.map((x) => {
          const A = values(x.hook.A), B = values(x.hook.B), [r, wA] = x.hook.A.shape, wB = x.hook.B.shape[0];
          const dIn = x.linear.inFeatures, dOut = x.linear.outFeatures;
          const u = x.hook.u ? values(x.hook.u) : new Float32Array(r).fill(1), v = x.hook.v ? values(x.hook.v) : new Float32Array(dOut).fill(1);
          const Af = new Float32Array(r * dIn), Bf = new Float32Array(dOut * r);
          for (let i = 0; i < r; i++) for (let j = 0; j < dIn; j++) Af[i * dIn + j] = Math.fround(u[i] * A[i * wA + j]);
          for (let i = 0; i < dOut; i++) for (let j = 0; j < r; j++) Bf[i * r + j] = Math.fround(v[i] * B[i * r + j]);
          void wB;
          return { path: x.path, A, wA, B, r, dIn, dOut, u, v, Af, Bf, An: names.get(x.hook.A)!, Bn: names.get(x.hook.B)!, un: x.hook.u && names.get(x.hook.u), vn: x.hook.v && names.get(x.hook.v) };
        });
        const { logits } = m.forward({ inputIds: fb.inputIds, attentionMask: fb.attentionMask });
        const got = values(logits);
        logits.dispose();
        const { grads } = await lossAndGrads(m, ad, fb);
        const g = new Map([...grads].map(([k, v]) => [k, values(v)]));
        tf.dispose([...grads.values()]);
        ad.unload();
        const r = spec.r, alpha = spec.method === 'vera' ? r : (spec as { alpha: number }).alpha;
        const lora = injectShareLoRA(m, { r, alpha, targets: [...targets], share: 'none', modulesToSave: [] });
        try {
          for (const x of lora.modules) {
            const f = mods.find((y) => y.path === x.path)!;
            tf.tidy(() => { x.hook.A.assign(tf.tensor2d(f.Af, [f.r, f.dIn])); x.hook.B.assign(tf.tensor2d(f.Bf, [f.dOut, f.r])); });
          }
          const { logits: l2 } = m.forward({ inputIds: fb.inputIds, attentionMask: fb.attentionMask });
          assert.ok(relErr(got, values(l2)) < 1e-5, `logits rel err ${relErr(got, values(l2))}`);
          l2.dispose();
          const { grads: lg } = await lossAndGrads(m, lora, fb);
          const want = new Map<string, Float64Array>();
          const acc = (k: string | undefined, n: number, i: number, x: number) => { if (!k || !g.has(k)) return; const w = want.get(k) ?? new Float64Array(n); w[i] += x; want.set(k, w); };
          for (const f of mods) {
            const gA = values(lg.get(`base_model.model.${f.path}.lora_A.default.weight`)!), gB = values(lg.get(`base_model.model.${f.path}.lora_B.default.weight`)!);
            for (let i = 0; i < f.r; i++) for (let j = 0; j < f.dIn; j++) { acc(f.An, f.A.length, i * f.wA + j, gA[i * f.dIn + j] * f.u[i]); acc(f.un, f.r, i, gA[i * f.dIn + j] * f.A[i * f.wA + j]); }
            for (let i = 0; i < f.dOut; i++) for (let j = 0; j < f.r; j++) { acc(f.Bn, f.B.length, i * f.r + j, gB[i * f.r + j] * f.v[i]); acc(f.vn, f.dOut, i, gB[i * f.r + j] * f.B[i * f.r + j]); }
          }
          tf.dispose([...lg.values()]);
          assert.deepEqual([...want.keys()].sort(), [...g.keys()].sort(), 'a gradient for every trainable tensor');
          for (const [k, w] of want) assert.ok(relErr(g.get(k)!, w) < 1e-4, `${k} rel err ${relErr(g.get(k)!, w)}`);
        } finally {
          lora.unload();
        }
      });
    }
  }

  it('Tied-LoRA: vBuA is ShareAB; each pattern trains exactly its capitals and starts as the base model', async () => {
    const m = models.llama;
    const base = logitsOf(m);
    const tied = injectShareLoRA(m, { method: 'tied-lora', tiedTrain: 'vBuA', r: 4, alpha: 8, targets: ['q', 'v'], seed: 9 });
    const a = snapshot(tied);
    tied.unload();
    const sab = injectShareLoRA(m, { share: 'AB', r: 4, alpha: 8, targets: ['q', 'v'], seed: 9 });
    assert.deepEqual(snapshot(sab), a, 'same tensors, same names, same initial values');
    sab.unload();
    for (const pattern of ['VBUA', 'vBuA', 'VbUa', 'vbuA', 'vBua', 'Vbua', 'vbUa']) {
      const ad = injectShareLoRA(m, { method: 'tied-lora', tiedTrain: pattern, r: 4, alpha: 8, targets: ['q', 'v'], seed: 1 });
      try {
        assert.deepEqual(logitsOf(m), base, `${pattern} starts as the base model`);
        const kinds = new Set([...ad.namedParameters().keys()].map((k) => /lora_([ABuv])/.exec(k)![1]));
        assert.deepEqual([...kinds].sort(), ['A', 'B', 'u', 'v'].filter((f) => pattern.includes(f === 'u' || f === 'v' ? f.toUpperCase() : f)).sort(), pattern);
        const count = countVariant([{ name: 'q', dIn: 64, dOut: 64, layers: 3, groups: 1 }, { name: 'v', dIn: 64, dOut: 32, layers: 3, groups: 1 }], 4, `Tied-LoRA:${pattern}`);
        assert.equal(ad.trainableParameterCount(), count.trainable, `${pattern} trainable`);
        assert.equal(ad.frozenParameterCount(), count.frozen, `${pattern} frozen`);
        const tr = new Trainer(m, ad, { lr: 0.05 });
        const before = snapshot(ad);
        await tr.step(batch);
        await tr.step(batch);
        tr.dispose();
        assert.ok(relErr(logitsOf(m), base) > 1e-6, `${pattern} learns`);
        for (const [k, v] of snapshot(ad)) assert.equal(ad.namedParameters().has(k), relErr(v, before.get(k)!) > 0, `${k} moves iff it trains`);
      } finally {
        ad.unload();
      }
    }
  });

  const roundTrips = [
    { method: 'lora-fa', share: 'A', r: 4, alpha: 8 }, { method: 'lora-fa', share: 'none', r: 4, alpha: 8 },
    { method: 'vera', r: 16 }, { method: 'tied-lora', r: 4, alpha: 8 }, { method: 'tied-lora', tiedTrain: 'VbUa', r: 4, alpha: 8, shareGroups: 2 },
  ] as const;
  for (const family of ['roberta', 'gpt2']) {
    for (const spec of roundTrips) {
      it(`${family} ${JSON.stringify(spec)}: save, load back exactly (method, frozen and trainable tensors, logits, merge)`, async () => {
        const m = models[family];
        const targets = family === 'gpt2' ? ['c_attn', 'c_fc'] : ['query', 'value', 'intermediate.dense'];
        const ad = injectShareLoRA(m, { ...spec, targets, init: 'random', seed: 6 });
        scramble(ad, 3);
        const tr = new Trainer(m, ad, { lr: 0.01 });
        await tr.step(family === 'roberta' ? { inputIds: ids, attentionMask: mask, labels: [0, 2] } : batch);
        tr.dispose();
        const want = snapshot(ad), logits = logitsOf(m);
        ad.merge();
        assert.ok(relErr(logitsOf(m), logits) < 1e-5, 'merged equals unmerged');
        ad.unmerge();
        const dir = mkdtempSync(join(tmpdir(), 'sl-methods-'));
        await ad.save(dir);
        ad.unload();
        const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
        assert.equal(cfg.peft_type, spec.method === 'vera' ? 'VERA' : 'LORA');
        if (spec.method !== 'vera') assert.equal(cfg.sharelora.method, spec.method);
        const back = await loadAdapter(m, dir);
        try {
          assert.equal(back.method, spec.method);
          assert.deepEqual(back.options.tiedTrain, spec.method === 'tied-lora' ? ('tiedTrain' in spec ? spec.tiedTrain : 'VBUA') : undefined);
          assert.deepEqual(back.shareGroups, spec.method === 'tied-lora' && 'shareGroups' in spec ? [[0, 1], [2]] : back.shareGroups);
          assert.deepEqual(snapshot(back), want, 'every tensor, bit for bit, under the same names');
          assert.deepEqual(logitsOf(m), logits);
        } finally {
          back.unload();
        }
        if (spec.method === 'tied-lora') {
          // the folded copies PEFT reads and the exact factors must agree
          const f = readSafetensors(join(dir, 'adapter_model.safetensors'));
          const k = [...f.tensors.keys()].find((x) => x.endsWith('lora_B.weight'))!;
          const t = f.tensors.get(k)!;
          (t.data as Float32Array)[0] += 1;
          writeFileSync(join(dir, 'adapter_model.safetensors'), serializeSafetensors(new Map([...f.tensors].map(([n, x]) => [n, { dtype: 'F32' as const, shape: x.shape, data: x.data as Float32Array }]))));
          await assert.rejects(loadAdapter(m, dir), /adapter_model\.safetensors: tensor ".*lora_B\.weight" is not what sharelora_factors\.safetensors folds to/);
          assert.ok(noHooks(m));
        }
        if (spec.method === 'vera') {
          // without saved projections PEFT redraws them from projection_prng_key; so do we
          const f = readSafetensors(join(dir, 'adapter_model.safetensors'));
          writeFileSync(join(dir, 'adapter_model.safetensors'), serializeSafetensors(new Map([...f.tensors].filter(([n]) => !n.startsWith('base_model.vera_')).map(([n, x]) => [n, { dtype: 'F32' as const, shape: x.shape, data: x.data as Float32Array }]))));
          await assert.rejects(loadAdapter(m, dir), /has no "base_model\.vera_A" .* save_projection is true/);
          writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, save_projection: false }));
          const redrawn = await loadAdapter(m, dir);
          assert.deepEqual(snapshot(redrawn), want, 'the seeded projections are the ones it was trained with');
          redrawn.unload();
          writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, save_projection: false, projection_prng_key: 1 }));
          const other = await loadAdapter(m, dir);
          assert.notDeepEqual(values(other.frozenParameters().get('base_model.vera_A.default')!), want.get('base_model.vera_A.default'));
          other.unload();
        }
      });
    }
  }

  it('accounting: each variant against its closed form, and a live model against its adapters and their AdamW state', async () => {
    const rows = (o: Parameters<typeof parameterTable>[1], arch: Parameters<typeof parameterTable>[0] = 'roberta-base') => Object.fromEntries((parameterTable(arch, o).objects() as AccountingRow[]).map((x) => [x.variant, x]));
    const L = 12, d = 768, r = 8;
    const t = rows({ r, targets: ['q', 'v'], variants: ['LoRA', 'ShareA', 'LoRA-FA', 'ShareA-FA', 'ShareAB-FA', 'VeRA', 'Tied-LoRA', 'Tied-LoRA:vBuA', 'Tied-LoRA:VbUa'] });
    const lora = 2 * L * r * (d + d);
    assert.equal(t.LoRA.trainable, lora);
    assert.equal(t['LoRA-FA'].trainable, 2 * L * r * d);
    assert.equal(t['LoRA-FA'].frozen, 2 * L * r * d);
    assert.equal(t['ShareA-FA'].trainable, 2 * L * r * d);
    assert.equal(t['ShareA-FA'].frozen, 2 * r * d);
    assert.equal(t['ShareAB-FA'].trainable, 2 * r * d);
    assert.equal(t.VeRA.trainable, 2 * L * (r + d));
    assert.equal(t.VeRA.frozen, r * (d + d));
    assert.equal(t['Tied-LoRA'].trainable, 2 * (r * d + r * d + L * r + L * d));
    assert.equal(t['Tied-LoRA:vBuA'].trainable, t.ShareA.trainable - 2 * L * r * d + 2 * r * d, 'vBuA is ShareAB');
    assert.equal(t['Tied-LoRA:VbUa'].trainable, 2 * L * (r + d));
    assert.equal(t['Tied-LoRA:VbUa'].frozen, 2 * r * (d + d));
    for (const x of Object.values(t)) {
      assert.equal(x.optimizerBytes, 8 * x.trainable);
      assert.equal(x.gradBytes, 4 * x.trainable);
      assert.equal(x.frozenBytes, 4 * x.frozen);
      assert.equal(x.savedBytes, 16 * lora - 16 * x.trainable - 4 * x.frozen);
    }
    // VeRA's projection spans the widest target: LLaMA-7B q (4096 → 4096) and down (11008 → 4096)
    const v = rows({ r: 256, targets: ['q', 'down'], variants: ['VeRA'] }, 'llama-7b').VeRA;
    assert.equal(v.trainable, 32 * (256 + 4096) * 2);
    assert.equal(v.frozen, 256 * (11008 + 4096));
    assert.equal((paperTable({ variants: ['VeRA', 'LoRA-FA'] }).objects() as AccountingRow[]).length, 14);
    assert.throws(() => parameterTable('roberta-base', { r, targets: ['q'], variants: ['Vera'] }), /variants: "Vera" is not a variant/);
    // live: the table for a loaded model is what the adapters hold
    const m = models.llama;
    const live = rows({ r: 4, targets: ['q', 'v', 'down'], shareGroups: 2, variants: ['LoRA-FA', 'ShareB-FA', 'VeRA', 'Tied-LoRA', 'Tied-LoRA:vbUa'] }, m);
    const inject: Record<string, object> = {
      'LoRA-FA': { method: 'lora-fa', share: 'none' }, 'ShareB-FA': { method: 'lora-fa', share: 'B', shareGroups: 2 }, VeRA: { method: 'vera' },
      'Tied-LoRA': { method: 'tied-lora', shareGroups: 2 }, 'Tied-LoRA:vbUa': { method: 'tied-lora', tiedTrain: 'vbUa', shareGroups: 2 },
    };
    for (const [variant, o] of Object.entries(inject)) {
      const ad = injectShareLoRA(m, { r: 4, targets: ['q', 'v', 'down'], modulesToSave: [], ...o });
      assert.equal(ad.trainableParameterCount(), live[variant].trainable, `${variant} trainable`);
      assert.equal(ad.frozenParameterCount(), live[variant].frozen, `${variant} frozen`);
      // and the optimizer really holds that much after a step
      const tr = new Trainer(m, ad, { lr: 1e-3 });
      await tr.step(batch);
      assert.equal(tr.optimizer.stateBytes(), live[variant].optimizerBytes, `${variant} AdamW state`);
      tr.dispose();
      ad.unload();
    }
  });

  it('checkpoints: a saved and resumed Trainer continues each method bit for bit (frozen tensors, ties and vectors restored)', async () => {
    const m = models.llama;
    for (const o of [{ method: 'lora-fa', share: 'A', r: 4 }, { method: 'vera', r: 16 }, { method: 'tied-lora', tiedTrain: 'VbUa', r: 4, shareGroups: 2 }] as const) {
      const run = async (tr: Trainer) => { const l: number[] = []; for (let i = 0; i < 2; i++) l.push(await tr.step(batch)); return l; };
      const ad = injectShareLoRA(m, { ...o, targets: ['q', 'v'], seed: 8 });
      const tr = new Trainer(m, ad, { lr: 0.02 });
      await run(tr);
      const dir = mkdtempSync(join(tmpdir(), 'sl-ckpt-'));
      await tr.save(dir);
      const want = await run(tr);
      const after = snapshot(ad);
      tr.dispose();
      ad.unload();
      const back = await Trainer.resume(dir, m);
      assert.deepEqual(await run(back), want, `${o.method}: the same two losses after resuming`);
      assert.deepEqual(snapshot(back.adapter as ShareLoraAdapter), after, `${o.method}: the same tensors`);
      back.dispose();
      (back.adapter as ShareLoraAdapter).unload();
      assert.ok(noHooks(m));
    }
  });

  it('AdapterConfigError names the field for a bad variant option on a checkpoint-style load (tied_train)', async () => {
    const m = models.llama;
    const ad = injectShareLoRA(m, { method: 'tied-lora', r: 4, alpha: 8, targets: ['q'] });
    const dir = mkdtempSync(join(tmpdir(), 'sl-tied-'));
    await ad.save(dir);
    ad.unload();
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, sharelora: { ...cfg.sharelora, tied_train: 'XBUA' } }));
    await assert.rejects(loadAdapter(m, dir), (e: Error) => e instanceof AdapterConfigError && /adapter_config\.json: tiedTrain: must spell/.test(e.message));
    assert.ok(noHooks(m));
  });
});
