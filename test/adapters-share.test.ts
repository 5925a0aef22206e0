/**
 * Where an adapter's sharing comes from on load (explicit option, recorded
 * config, identical non-zero copies), and share groups: k = 1 is LoRA and
 * k = L is ShareLoRA (both checked against the PyTorch fixtures), and in
 * between a group-shared matrix's gradient is the sum over its layers.
 */
import { OptionsError } from '../src/util/options.js';
import { describe, it, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { injectShareLoRA, type ShareLoraAdapter } from '../src/adapters/sharelora.js';
import { loadAdapter } from '../src/adapters/peft.js';
import { countParameters, paperTable, parameterTable } from '../src/adapters/accounting.js';
import { AdapterConfigError, type Share } from '../src/adapters/config.js';
import { CheckpointError } from '../src/util/errors.js';
import { lossAndGrads } from '../src/train/loss.js';
import type { Model } from '../src/models/types.js';
import { expected, FIXTURES, relErr, testBackend } from './helpers.js';
import { checkAgainstFixture, fixtureBatch } from './fixture-check.js';

const SHARED = ['A', 'B', 'AB'] as const;
const tmp = () => mkdtempSync(join(tmpdir(), 'sl-share-'));
/** a folder as PEFT's save_pretrained writes it: our keys minus the sharelora record */
function asPeft(dir: string): string {
  const f = join(dir, 'adapter_config.json');
  const c = JSON.parse(readFileSync(f, 'utf8'));
  delete c.sharelora;
  writeFileSync(f, JSON.stringify(c));
  return dir;
}
const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));

describe('where the sharing comes from on load', () => {
  let llama: Model, roberta: Model;
  const live: ShareLoraAdapter[] = [];
  const keep = (a: ShareLoraAdapter) => { live.push(a); return a; };
  afterEach(() => { for (const a of live.splice(0)) a.unload(); });
  before(async () => {
    await testBackend();
    llama = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
    roberta = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  });

  it("an untrained PEFT LoRA (every B zero, so every layer's B identical) loads as LoRA, not ShareB", async () => {
    const dir = tmp();
    const fresh = injectShareLoRA(llama, { r: 4, targets: ['q', 'v'], share: 'none', seed: 1 });
    await fresh.save(dir);
    fresh.unload();
    const ours = keep(await loadAdapter(llama, dir));
    assert.equal(ours.share, 'none', 'recorded share');
    ours.unload();
    const peft = keep(await loadAdapter(llama, asPeft(dir)));
    assert.equal(peft.share, 'none', 'zero copies are no evidence of a tie');
    assert.equal(peft.trainableParameterCount(), countParameters(3, [{ name: 'q', dIn: 64, dOut: 64 }, { name: 'v', dIn: 64, dOut: 32 }], 4, 'none'));
  });

  it('a tie is inferred only when every target agrees', async () => {
    const ad = injectShareLoRA(llama, { r: 4, targets: ['q', 'v'], share: 'B', init: 'random', seed: 2 });
    const dir = tmp();
    await ad.save(dir);
    // q's B: one identical non-zero copy per layer; v's B: zero in every layer
    const vB = ad.modules.find((m) => m.role === 'self_attn.v_proj')!.hook.B;
    tf.tidy(() => vB.assign(tf.zerosLike(vB)));
    const mixed = tmp();
    await ad.save(mixed);
    ad.unload();
    const b = keep(await loadAdapter(llama, asPeft(dir)));
    assert.equal(b.share, 'B');
    assert.deepEqual(b.shareGroups, [[0, 1, 2]]);
    b.unload();
    assert.equal(keep(await loadAdapter(llama, asPeft(mixed))).share, 'none');
  });

  it('PEFT-tied fixtures are recognised: lora, shareA, shareB, shareAB', async () => {
    for (const [m, family] of [[llama, 'llama'], [roberta, 'roberta']] as const) {
      for (const [name, share] of [['lora', 'none'], ['shareA', 'A'], ['shareB', 'B'], ['shareAB', 'AB']]) {
        const ad = await loadAdapter(m, join(FIXTURES, family, name));
        assert.equal(ad.share, share, `${family}/${name}`);
        ad.unload();
      }
    }
  });

  it('an explicit share wins over the folder and is checked against its copies', async () => {
    const lora = join(FIXTURES, 'llama', 'lora');
    await assert.rejects(loadAdapter(llama, lora, { share: 'A' }), (e: Error) =>
      e instanceof AdapterConfigError && e.message.startsWith(join(lora, 'adapter_model.safetensors'))
      && /share: 'A' ties lora_A of self_attn\.(q|k|v)_proj across layers 0, 1, 2, but layer 1's copy differs from layer 0's/.test(e.message));
    await assert.rejects(loadAdapter(llama, join(FIXTURES, 'llama', 'shareA'), { share: 'AB' }), /ties lora_B of self_attn\.\w+ across layers 0, 1, 2, but layer 1's copy differs/);
    // untie a ShareA folder: each layer gets its own copy of the same values
    const shareA = join(FIXTURES, 'llama', 'shareA');
    const tied = keep(await loadAdapter(llama, shareA));
    const exp = expected('llama');
    const { logits: l1 } = llama.forward(fixtureBatch(exp, 'llama'));
    tied.unload();
    const untied = keep(await loadAdapter(llama, shareA, { share: 'none' }));
    assert.equal(untied.share, 'none');
    const { logits: l2 } = llama.forward(fixtureBatch(exp, 'llama'));
    assert.equal(relErr(await l2.data(), await l1.data()), 0);
    tf.dispose([l1, l2]);
    untied.unload();
    // a fresh LoRA's zero B's may be tied on request
    const dir = tmp();
    const fresh = injectShareLoRA(llama, { r: 4, targets: ['q'], share: 'none' });
    await fresh.save(dir);
    fresh.unload();
    const b = keep(await loadAdapter(llama, dir, { share: 'B' }));
    assert.equal(b.share, 'B');
    assert.equal(b.trainableParameterCount(), 3 * 4 * 64 + 64 * 4);
  });

  it('loadAdapter options are checked', async () => {
    const lora = join(FIXTURES, 'llama', 'lora');
    await assert.rejects(loadAdapter(llama, lora, { shared: 'A' } as never), (e: Error) => e instanceof OptionsError && /loadAdapter: option "shared" is not an option; did you mean "share"\?/.test(e.message));
    await assert.rejects(loadAdapter(llama, lora, { share: 'C' as never }), /share: must be one of/);
    await assert.rejects(loadAdapter(llama, lora, { shareGroups: 1 }), /shareGroups: needs share/);
  });
});

describe('share groups', () => {
  const models: Record<string, Model> = {};
  const live: ShareLoraAdapter[] = [];
  const keep = (a: ShareLoraAdapter) => { live.push(a); return a; };
  afterEach(() => { for (const a of live.splice(0)) a.unload(); });
  before(async () => {
    await testBackend();
    for (const f of ['gpt2', 'roberta', 'llama']) models[f] = loadModelFromDir(join(FIXTURES, f, 'model'));
  });

  for (const family of ['gpt2', 'roberta', 'llama']) {
    it(`${family}: k = 1 is LoRA, for share A, B and AB (PyTorch's LoRA logits and gradients)`, async () => {
      const exp = expected(family);
      for (const share of SHARED) {
        const ad = keep(await loadAdapter(models[family], join(FIXTURES, family, 'lora'), { share, shareGroups: 1 }));
        assert.deepEqual(ad.shareGroups, [[0], [1], [2]]);
        await checkAgainstFixture(models[family], ad, exp, family, 'lora', { curve: family === 'llama' && share === 'A' });
        live.pop()!.unload();
      }
    });
  }

  for (const family of ['roberta', 'llama']) {
    it(`${family}: k = L (and the explicit partition of all layers) is ShareA, ShareB, ShareAB (PyTorch's)`, async () => {
      const exp = expected(family);
      for (const share of SHARED) {
        for (const shareGroups of [3, [[2, 0, 1]]]) {
          const ad = keep(await loadAdapter(models[family], join(FIXTURES, family, `share${share}`), { share, shareGroups }));
          assert.deepEqual(ad.shareGroups, [[0, 1, 2]]);
          await checkAgainstFixture(models[family], ad, exp, family, `share${share}`, { curve: family === 'llama' && share === 'B' && shareGroups === 3 });
          live.pop()!.unload();
        }
      }
    });
  }

  const dims = [{ name: 'q', dIn: 64, dOut: 64 }, { name: 'k', dIn: 64, dOut: 32 }, { name: 'v', dIn: 64, dOut: 32 }];
  for (const groups of [[[0, 1], [2]], [[0, 2], [1]]]) {
    it(`groups ${JSON.stringify(groups)}: the output of the untied model with copied values, gradient = sum over the group's layers`, async () => {
      const m = models.llama;
      const batch = fixtureBatch(expected('llama'), 'llama');
      for (const share of SHARED) {
        const shareGroups = groups[0].length === 2 && groups[0][1] === 1 ? 2 : groups;
        const g = keep(injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'k', 'v'], share, shareGroups, init: 'random', seed: 11 }));
        assert.deepEqual(g.shareGroups, groups);
        assert.equal(g.trainableParameterCount(), countParameters(3, dims, 4, share, 2));
        const row = (parameterTable(m, { r: 4, targets: ['q', 'k', 'v'], shareGroups }).objects() as Array<{ share: Share; trainable: number; groups: number }>).find((r) => r.share === share)!;
        assert.equal(row.trainable, g.trainableParameterCount());
        assert.equal(row.groups, 2);
        // every layer's copy names the tensor of its group's first layer
        for (const s of g.summary()) {
          const first = groups.find((grp) => grp.includes(s.layer))![0];
          for (const w of ['A', 'B'] as const) {
            const owner = share.includes(w) ? first : s.layer;
            assert.equal(s[w], `base_model.model.${s.module.replace(/layers\.\d+/, `layers.${owner}`)}.lora_${w}.default.weight`);
          }
        }
        const values = new Map(await Promise.all(g.modules.map(async (x) => [x.path, { A: await x.hook.A.array() as number[][], B: await x.hook.B.array() as number[][] }] as const)));
        const names = new Map(g.summary().map((s) => [s.module, s]));
        const { logits: lg } = m.forward(batch);
        const tied = await lossAndGrads(m, g, batch);
        live.pop()!.unload();

        const u = keep(injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'k', 'v'], share: 'none' }));
        for (const x of u.modules) {
          const v = values.get(x.path)!;
          tf.tidy(() => { x.hook.A.assign(tf.tensor2d(v.A)); x.hook.B.assign(tf.tensor2d(v.B)); });
        }
        const { logits: lu } = m.forward(batch);
        assert.ok(relErr(await lg.data(), await lu.data()) < 1e-6, 'same function');
        const untied = await lossAndGrads(m, u, batch);
        assert.ok(Math.abs(tied.loss - untied.loss) < 1e-6 * Math.abs(untied.loss));
        const sums = new Map<string, tf.Tensor>();
        for (const x of u.modules) {
          for (const w of ['A', 'B'] as const) {
            const into = names.get(x.path)![w];
            const gr = untied.grads.get(`base_model.model.${x.path}.lora_${w}.default.weight`)!;
            const prev = sums.get(into);
            sums.set(into, prev ? tf.add(prev, gr) : tf.clone(gr));
            prev?.dispose();
          }
        }
        assert.deepEqual([...tied.grads.keys()].sort(), [...sums.keys()].sort());
        for (const [k, want] of sums) {
          const err = relErr(await tied.grads.get(k)!.data(), await want.data());
          assert.ok(err < 1e-5, `${share} ${k}: rel err ${err}`);
        }
        tf.dispose([lg, lu, ...tied.grads.values(), ...untied.grads.values(), ...sums.values()]);
        live.pop()!.unload();
      }
    });
  }

  it('groups are recorded in adapter_config.json, restored, detected in a PEFT folder, and checked', async () => {
    const m = models.llama;
    for (const share of SHARED) {
      const ad = keep(injectShareLoRA(m, { r: 4, targets: ['q', 'v'], share, shareGroups: [[0, 2], [1]], init: 'random', seed: 5 }));
      const batch = fixtureBatch(expected('llama'), 'llama');
      const { logits } = m.forward(batch);
      const want = await logits.data();
      logits.dispose();
      const dir = tmp();
      await ad.save(dir);
      ad.unload();
      assert.deepEqual(config(dir).sharelora, { share, share_groups: [[0, 2], [1]], version: 1 });
      const same = async (a: ShareLoraAdapter) => {
        assert.equal(a.share, share);
        assert.deepEqual(a.shareGroups, [[0, 2], [1]]);
        assert.equal(a.trainableParameterCount(), countParameters(3, [{ name: 'q', dIn: 64, dOut: 64 }, { name: 'v', dIn: 64, dOut: 32 }], 4, share, 2));
        const { logits: l } = m.forward(batch);
        assert.equal(relErr(await l.data(), want), 0);
        l.dispose();
        a.unload();
      };
      await same(keep(await loadAdapter(m, dir)));
      await assert.rejects(loadAdapter(m, dir, { share }), (e: Error) => e instanceof AdapterConfigError
        && new RegExp(`ties lora_${share[0]} of self_attn\\.(q|v)_proj across layers 0, 1, 2, but layer 1's copy differs from layer 0's`).test(e.message));
      await same(keep(await loadAdapter(m, asPeft(dir))));
      await same(keep(await loadAdapter(m, dir, { share, shareGroups: [[1], [2, 0]] })));
    }
    // the recorded groups are checked against the copies, naming the file, module and layers
    const dir = tmp();
    const ad = injectShareLoRA(m, { r: 4, targets: ['q'], share: 'A', shareGroups: 2, init: 'random' });
    await ad.save(dir);
    ad.unload();
    const c = config(dir);
    c.sharelora.share_groups = [[0, 1, 2]];
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(c));
    await assert.rejects(loadAdapter(m, dir), (e: Error) => e instanceof CheckpointError && e.message.startsWith(join(dir, 'adapter_model.safetensors'))
      && /layers\.2\.self_attn\.q_proj\.lora_A\.weight" differs from layer 0's although adapter_config\.json records lora_A of self_attn\.q_proj as shared by layers 0, 1, 2/.test(e.message));
  });

  it('shareGroups is checked: a positive k up to the depth, or a partition of the layers', async () => {
    const m = models.llama;
    const bad = (shareGroups: unknown, re: RegExp, share: Share = 'A') => assert.throws(() => injectShareLoRA(m, { targets: ['q'], share, shareGroups: shareGroups as number }), (e: Error) => e instanceof AdapterConfigError && re.test(e.message), String(shareGroups));
    bad([[0, 1], [1, 2]], /shareGroups: layer 1 is in groups 0 and 1; the groups must partition the layers/);
    bad([[0, 0], [1, 2]], /shareGroups: layer 0 is in group 0 twice/);
    bad([[0, 1]], /shareGroups: layer 2 is in no group/);
    bad([[0, 1], [2, 3]], /shareGroups: group 1 names layer 3, but the model's layers are 0 to 2/);
    bad([[0, 1], []], /shareGroups: must be a positive integer k .* or a list of non-empty lists/);
    bad(0, /shareGroups: must be a positive integer k/);
    bad(1.5, /shareGroups: must be a positive integer k/);
    bad(4, /shareGroups: blocks of 4 layers, but the model has 3/);
    bad(1, /shareGroups: ties nothing with share 'none'/, 'none');
    assert.throws(() => injectShareLoRA(m, { targets: ['q'], shareGroup: 2 } as never), /injectShareLoRA: option "shareGroup" is not an option; did you mean "shareGroups"\?/);
    assert.throws(() => injectShareLoRA(m, { targets: ['q'], r: 2, alpha: 1e308 }), /alpha: 1e\+308 gives a scaling alpha\/r of 5e\+307; at most 10000/);
    assert.equal(m.linears.get('model.layers.0.self_attn.q_proj')!.lora, undefined, 'a refused option leaves no hook behind');
  });
});

describe('share-group accounting', () => {
  it('G groups: ShareA = G·r·d_in + L·r·d_out, ShareB = L·r·d_in + G·r·d_out, ShareAB = G·r·(d_in + d_out)', () => {
    // RoBERTa-base, q and v, r = 8, L = 12; k = 4 gives G = 3
    const by = (o: { shareGroups?: number | number[][] }) => Object.fromEntries((parameterTable('roberta-base', { r: 8, targets: ['q', 'v'], ...o }).objects() as Array<{ variant: string; trainable: number }>).map((r) => [r.variant, r.trainable]));
    assert.deepEqual(by({ shareGroups: 4 }), { LoRA: 294912, ShareA: 2 * (3 * 8 * 768 + 12 * 8 * 768), ShareB: 2 * (12 * 8 * 768 + 3 * 8 * 768), ShareAB: 2 * 3 * 8 * 1536 });
    assert.deepEqual(by({ shareGroups: 5 }), by({ shareGroups: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]] }), 'a shorter last block');
    // the two ends: k = 1 is LoRA in every variant, k = L is the paper's ShareLoRA
    assert.deepEqual(Object.values(by({ shareGroups: 1 })), [294912, 294912, 294912, 294912]);
    assert.deepEqual(by({ shareGroups: 12 }), { LoRA: 294912, ShareA: 159744, ShareB: 159744, ShareAB: 24576 });
    const rows = paperTable({ shareGroups: 1 }).objects() as Array<{ model: string; variant: string; trainable: number; vsLoRA: number }>;
    assert.ok(rows.every((r) => r.vsLoRA === 0), 'k = 1 saves nothing at paper scale');
    const def = paperTable().objects() as Array<{ trainable: number }>;
    assert.deepEqual((paperTable({ shareGroups: 64 }).objects() as Array<{ trainable: number }>).map((r) => r.trainable), def.map((r) => r.trainable), 'k past every depth is one group');
    assert.throws(() => parameterTable('roberta-base', { r: 8, targets: ['q'], shareGroups: [[0, 1]] }), /layers 2, 3, .* are in no group/);
    assert.throws(() => parameterTable('roberta-base', { r: 8, targets: ['q'], groups: 2 } as never), /parameterTable: option "groups" is not an option/);
  });
});
