/**
 * Each fused WebGPU kernel against the tfjs-core fallback of
 * src/backend/ops.ts run on the cpu backend: forward output and the
 * gradient of every differentiable input. Runs on any WebGPU adapter
 * (lavapipe in CI); skips with the reason when there is none.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { thinSplits } from '../../src/backend/webgpu/thin.js';
import { normStats } from '../../src/backend/webgpu/norm.js';
import { webgpuBackend } from '../../src/backend/webgpu/dispatch.js';
import { flags } from '../../src/backend/flags.js';
import * as tf from '@tensorflow/tfjs-core';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { AdamW } from '../../src/train/adamw.js';
import { checkAgainstCpu, f32, LIBRARY_TILES, randn, relErr, releaseGPU, tileDisagreements, webgpuUnavailable, type Case } from './helpers.js';
import { withEnv } from '../helpers.js';

const TOL = 2e-5;
// Lavapipe compiles each GEMM variant with LLVM (seconds apiece for the big
// tiles), so the op tests use the smallest tile; the tile test covers the rest.
process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

const check = (name: string, f: (...x: tf.Tensor[]) => tf.Tensor, g: (...x: tf.Tensor[]) => tf.Tensor, c: Case, tol = TOL) => checkAgainstCpu(name, f, g, c, tol);

describe('webgpu kernels vs tfjs-core fallback', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP webgpu kernel tests: ${skip}`); });
  after(() => releaseGPU());

  it('linear (odd shapes, bias)', async (t) => {
    if (skip) return t.skip(skip);
    // 1,000 rows: the bias gradient's column sum over several 64-row stretches, the last one short (norm.ts columnSum)
    for (const [N, I, O, tw] of [[37, 29, 51, 0], [64, 128, 96, 1], [130, 64, 3, 0], [1000, 29, 70, 0]]) {
      await check(`linear ${N}x${I}x${O} transposeW=${tw}`, (x, w, b) => ref.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, !!tw),
        (x, w, b) => ours.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, !!tw),
        { inputs: [f32([N, I], 1), f32(tw ? [O, I] : [I, O], 2, 0.2), f32([O], 3)], wrt: [0, 1, 2] }, 1e-4);
    }
  });

  it('loraLinear: base + s·(xAᵀ)Bᵀ, every gradient', async (t) => {
    if (skip) return t.skip(skip);
    for (const [N, I, O, r, tw] of [[40, 48, 72, 8, 0], [33, 30, 17, 4, 1]]) {
      await check(`lora ${N}x${I}x${O} r${r} transposeW=${tw}`,
        (x, w, b, A, B) => ref.loraLinear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, A as tf.Tensor2D, B as tf.Tensor2D, 2, undefined, !!tw),
        (x, w, b, A, B) => ours.loraLinear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, A as tf.Tensor2D, B as tf.Tensor2D, 2, undefined, !!tw),
        { inputs: [f32([N, I], 4), f32(tw ? [O, I] : [I, O], 5, 0.2), f32([O], 6), f32([r, I], 7, 0.3), f32([O, r], 8, 0.3)], wrt: [0, 1, 2, 3, 4] }, 1e-4);
    }
  });

  it('loraLinear without bias, gradient of x, A, B only', async (t) => {
    if (skip) return t.skip(skip);
    await check('lora nobias',
      (x, w, A, B) => ref.loraLinear(x as tf.Tensor2D, w as tf.Tensor2D, undefined, A as tf.Tensor2D, B as tf.Tensor2D, 0.5),
      (x, w, A, B) => ours.loraLinear(x as tf.Tensor2D, w as tf.Tensor2D, undefined, A as tf.Tensor2D, B as tf.Tensor2D, 0.5),
      { inputs: [f32([20, 16], 9), f32([16, 24], 10), f32([8, 16], 11), f32([24, 8], 12)], wrt: [0, 2, 3] }, 1e-4);
  });

  it('layerNorm and rmsNorm', async (t) => {
    if (skip) return t.skip(skip);
    // [3, 5, D]: one stretch of rows for dγ and dβ; [3, 700, 100]: 2,100 rows in 33 stretches, the last short, and
    // a D that is not a multiple of the 64 columns a workgroup sums
    // and again with the row sums by subgroups (SHARELORA_WEBGPU_SUBGROUP_NORMS, where the device has them: lavapipe's
    // are 8 wide, so a row's 32-256 threads span several subgroups)
    const hasSubgroups = webgpuBackend().device.features.has('subgroups');
    for (const sub of hasSubgroups ? [false, true] : [false]) {
      if (sub) process.env.SHARELORA_WEBGPU_SUBGROUP_NORMS = '1'; else delete process.env.SHARELORA_WEBGPU_SUBGROUP_NORMS;
      const before = normStats.subgroupDispatches;
      for (const [T, D] of [[5, 48], [5, 700], [700, 100]]) {
        const c: Case = { inputs: [{ data: randn(3 * T * D, 13, 2).map((v, i) => v + (i % 7)), shape: [3, T, D] }, f32([D], 14), f32([D], 15)], wrt: [0, 1, 2] };
        await check(`layerNorm T=${T} D=${D} subgroups=${sub}`, (x, g, b) => ref.layerNorm(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), (x, g, b) => ours.layerNorm(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), c, 1e-4);
        await check(`rmsNorm T=${T} D=${D} subgroups=${sub}`, (x, g) => ref.rmsNorm(x, g as tf.Tensor1D, 1e-6), (x, g) => ours.rmsNorm(x, g as tf.Tensor1D, 1e-6),
          { inputs: c.inputs.slice(0, 2), wrt: [0, 1] }, 1e-4);
      }
      assert.equal(normStats.subgroupDispatches > before, sub, `subgroups=${sub}: the subgroup path ${sub ? 'did not run' : 'ran'}`);
    }
    delete process.env.SHARELORA_WEBGPU_SUBGROUP_NORMS;
    if (!hasSubgroups) console.log('# this adapter has no subgroups: the subgroup row sums were not run');
  });

  it('gelu (tanh, erf) and silu', async (t) => {
    if (skip) return t.skip(skip);
    // 2,331 elements: one a thread; 1,992 (a multiple of 4): four a thread (activation.ts), both ways
    for (const shape of [[7, 333], [6, 332]]) {
      const c: Case = { inputs: [f32(shape, 16, 3)], wrt: [0] };
      await check(`gelu tanh ${shape}`, (x) => ref.gelu(x, 'tanh'), (x) => ours.gelu(x, 'tanh'), c);
      await check(`gelu erf ${shape}`, (x) => ref.gelu(x, 'erf'), (x) => ours.gelu(x, 'erf'), c, 1e-5);
      await check(`silu ${shape}`, (x) => ref.silu(x), (x) => ours.silu(x), c);
    }
  });

  it('geluLinear: the GELU inside the GEMM (A\'s loads, the input gradient\'s epilogue), every gradient, unsplit and split', async (t) => {
    if (skip) return t.skip(skip);
    // against linear(gelu(h)) on the cpu; odd shapes take the scalar loads and stores, 64 × 128 × 96 the vec4 ones
    for (const [N, I, O, tw, kind] of [[37, 29, 51, 0, 'tanh'], [64, 128, 96, 1, 'tanh'], [40, 36, 20, 0, 'erf']] as const) {
      await check(`geluLinear ${N}x${I}x${O} transposeW=${tw} ${kind}`,
        (h, w, b) => ref.geluLinear(h as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, kind, !!tw),
        (h, w, b) => ours.geluLinear(h as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, kind, !!tw),
        { inputs: [f32([N, I], 60, 2), f32(tw ? [O, I] : [I, O], 61, 0.2), f32([O], 62)], wrt: [0, 1, 2] }, 1e-4);
    }
    // split over K (the activation in every partial's A loads; act' in the reduce), aligned and not
    for (const [M, K, N] of [[96, 200, 64], [50, 130, 33]]) {
      for (const kind of ['gelu_tanh', 'gelu_erf'] as const) {
        const a = randn(M * K, 63, 2), b = randn(K * N, 64, 0.3), h = randn(M * N, 65, 2);
        await tf.setBackend('cpu');
        const g = kind === 'gelu_erf' ? 'erf' : 'tanh';
        const wantF = await tf.matMul(ref.gelu(tf.tensor(a, [M, K]), g), tf.tensor(b, [K, N])).data();
        const c = tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N]));
        const wantB = await tf.grad((x) => tf.sum(tf.mul(ref.gelu(x, g), c)))(tf.tensor(h, [M, N])).data();
        await tf.setBackend('webgpu');
        for (const splitK of [1, 3]) {
          const f = tf.engine().runKernel('ShareLoraMatMul', { a: tf.tensor(a, [M, K]), b: tf.tensor(b, [K, N]) }, { transA: false, transB: false, splitK, actA: kind } as never) as tf.Tensor;
          assert.ok(relErr(await f.data(), wantF) < 1e-5, `actA ${kind} ${M}x${K}x${N} S=${splitK}: rel err ${relErr(await f.data(), wantF)}`);
          const d = tf.engine().runKernel('ShareLoraMatMul', { a: tf.tensor(a, [M, K]), b: tf.tensor(b, [K, N]), h: tf.tensor(h, [M, N]) }, { transA: false, transB: false, splitK, dAct: kind } as never) as tf.Tensor;
          assert.ok(relErr(await d.data(), wantB) < 1e-5, `dAct ${kind} ${M}x${K}x${N} S=${splitK}: rel err ${relErr(await d.data(), wantB)}`);
        }
      }
    }
  });

  it('attention on token-major q/k/v: causal, key mask (int32 and float), GQA', async (t) => {
    if (skip) return t.skip(skip);
    const configs: Array<[number, number, number, number, number, boolean, '' | 'int32' | 'float32']> = [
      // B, H, Hkv, T, D, causal, mask dtype
      [2, 3, 3, 17, 8, true, ''],
      [2, 4, 2, 24, 16, true, 'int32'],
      [1, 4, 1, 9, 4, false, 'float32'],
      [2, 2, 2, 12, 8, false, 'int32'],
    ];
    for (const [B, H, Hkv, T, D, causal, maskType] of configs) {
      const km = new Int32Array(B * T).fill(1);
      if (maskType) for (let b = 0; b < B; b++) for (let j = 0; j < b * 3 + 2; j++) km[b * T + T - 1 - j] = 0;
      const inputs: Case['inputs'] = [f32([B, T, H * D], 17), f32([B, T, Hkv * D], 18), f32([B, T, Hkv * D], 19)];
      if (maskType) inputs.push({ data: maskType === 'int32' ? km : Float32Array.from(km), shape: [B, T], dtype: maskType });
      const opts = (m?: tf.Tensor) => ({ heads: H, kvHeads: Hkv, causal, keyMask: m as tf.Tensor2D | undefined, scale: 1 / Math.sqrt(D) });
      const mk = (impl: typeof ref.attention) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m?: tf.Tensor) =>
        impl(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts(m));
      await check(`attention B${B} H${H}/${Hkv} T${T} D${D} causal=${causal} mask=${maskType || 'none'}`, mk(ref.attention), mk(ours.attention), { inputs, wrt: [0, 1, 2] }, 1e-4);
      if (H === Hkv) {
        // GPT-2's packed c_attn output: one [B, T, 3C] input, one [B, T, 3C] gradient
        const packed: Case['inputs'] = [f32([B, T, 3 * H * D], 20), ...inputs.slice(3)];
        const mp = (impl: typeof ref.attentionPacked) => (qkv: tf.Tensor, m?: tf.Tensor) => impl(qkv as tf.Tensor3D, opts(m));
        await check(`attentionPacked B${B} H${H} T${T} D${D} causal=${causal} mask=${maskType || 'none'}`, mp(ref.attentionPacked), mp(ours.attentionPacked), { inputs: packed, wrt: [0] }, 1e-4);
      }
    }
  });

  it('crossEntropy with ignored labels (one logit a thread, and four: SHARELORA_WEBGPU_XENT4)', async (t) => {
    if (skip) return t.skip(skip);
    for (const x4 of ['0', '1']) {
      await withEnv('SHARELORA_WEBGPU_XENT4', x4, async () => {
        // 2,600: two of x4's 1,024-wide iterations and a part of a third, whose lanes past V hold nothing
        for (const [N, V] of [[13, 1001], [6, 50], [5, 2600]]) {
          const labels = new Int32Array(N);
          for (let i = 0; i < N; i++) labels[i] = i % 4 === 3 ? -100 : (i * 7919) % V;
          await check(`crossEntropy ${N}x${V} xent4=${x4}`, (l, y) => ref.crossEntropy(l as tf.Tensor2D, y as tf.Tensor1D), (l, y) => ours.crossEntropy(l as tf.Tensor2D, y as tf.Tensor1D),
            // (other logits for the second pass: a pooled buffer of the first pass's answer must not pass for a write)
            { inputs: [f32([N, V], x4 === '1' ? 27 : 20, 4), { data: labels, shape: [N], dtype: 'int32' }], wrt: [0] }, 1e-5);
        }
        // every label ignored: the fallback divides by max(n, 1) and gives 0
        await check(`crossEntropy all ignored xent4=${x4}`, (l, y) => ref.crossEntropy(l as tf.Tensor2D, y as tf.Tensor1D), (l, y) => ours.crossEntropy(l as tf.Tensor2D, y as tf.Tensor1D),
          { inputs: [f32([3, 10], 21), { data: new Int32Array(3).fill(-100), shape: [3], dtype: 'int32' }], wrt: [0] }, 1e-6);
      });
    }
  });

  it('a float binding fed a tensor whose buffer still holds int32 bits (tfjs relabels int32 -> float32 casts) is refused', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    const ints = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 4], 'int32');
    const x = tf.cast(ints, 'float32');
    const gamma = tf.ones([4]) as tf.Tensor1D, beta = tf.zeros([4]) as tf.Tensor1D;
    await Promise.all([gamma.data(), beta.data()]); // no GPU work left in flight when the process exits
    assert.throws(() => ours.layerNorm(x, gamma, beta, 1e-5), /binding X is (f32|vec4<f32>) but its tensor's buffer holds int32/);
    tf.dispose([ints, x, gamma, beta]);
  });

  it('AdamW (fused, with a clipping scale) and gradient statistics match the tfjs-core path', async (t) => {
    if (skip) return t.skip(skip);
    const shapes = [[8, 37], [300], [5, 4, 3]];
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const opt = new AdamW({ weightDecay: 0.1 });
      const params = new Map(shapes.map((sh, i) => [`p${i}`, tf.variable(tf.tensor(randn(sh.reduce((a, b) => a * b, 1), 30 + i), sh))]));
      for (let step = 0; step < 3; step++) {
        const grads = new Map(shapes.map((sh, i) => [`p${i}`, tf.tensor(randn(sh.reduce((a, b) => a * b, 1), 40 + 10 * step + i, 0.5), sh)]));
        opt.apply(params, grads, { lr: 1e-2, gradScale: step === 1 ? 0.37 : 1 });
        tf.dispose([...grads.values()]);
      }
      const out = await Promise.all([...params.values(), ...opt.m.values(), ...opt.v.values()].map((p) => p.data()));
      tf.dispose([...params.values()]);
      opt.dispose();
      return out;
    };
    const want = await run('cpu');
    const got = await run('webgpu');
    want.forEach((w, i) => assert.ok(relErr(got[i], w) < 1e-4, `tensor ${i}: rel err ${relErr(got[i], w)}`));
    // [Σg², all finite] with NaN and Inf caught, over more elements than one workgroup's threads (one pass: at most
    // flags.gradStatsSplit elements)
    await tf.setBackend('webgpu');
    // and over more than flags.gradStatsSplit elements (two passes: partials over a grid-strided range, then their sum), the
    // bad value in the last workgroup's stretch and in the first
    for (const [size, at] of [[Math.min(5000, flags.gradStatsSplit), Math.min(4321, flags.gradStatsSplit - 1)], [flags.gradStatsSplit + 1, flags.gradStatsSplit], [300001, 3], [300001, 299999]] as const) {
      const g = randn(size, 50);
      let sq = 0;
      for (const x of g) sq += x * x;
      for (const [bad, flag] of [[undefined, 1], [NaN, 0], [Infinity, 0], [-Infinity, 0]] as const) {
        const data = Float32Array.from(g);
        if (bad !== undefined) data[at] = bad;
        const st = tf.tidy(() => ours.gradStats(tf.tensor1d(data)));
        const [s2, f] = await st.data();
        st.dispose();
        assert.equal(f, flag, `${size} elements: finite flag with ${bad} at ${at}`);
        if (bad === undefined) assert.ok(Math.abs(s2 - sq) / sq < 1e-5, `${size} elements: sum of squares ${s2} vs ${sq}`);
      }
    }
  });

  it('tf.matMul on webgpu goes through our GEMM (every transpose, batched, broadcast, thin)', async (t) => {
    if (skip) return t.skip(skip);
    assert.ok(thinSplits(Math.ceil(256 / 16), 4096) > 1 && thinSplits(Math.ceil(200 / 16), 1000) === 3, 'the cases below split K');
    assert.equal(thinSplits(Math.ceil(100 / 16), 70), 1);
    // SHARELORA_GEMM_THIN_WAVES: GPT-2 small's dB (2,304 rows in 144 groups, K = 2,048 tokens) splits only past two a SM
    assert.equal(thinSplits(144, 2048, 132, 2), 1);
    assert.equal(thinSplits(144, 2048, 132, 8), 8);
    assert.equal(thinSplits(48, 2048, 132, 8), 8);
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[45, 70], [70, 33], false, false],
      [[70, 45], [70, 33], true, false],
      [[45, 70], [33, 70], false, true],
      [[70, 45], [33, 70], true, true],
      [[3, 20, 12], [3, 12, 9], false, false],
      [[2, 3, 16, 8], [2, 3, 16, 8], false, true],
      // thin products (one side <= 8: thin.ts), every layout, both orientations
      [[100, 70], [70, 8], false, false],
      [[70, 100], [8, 70], true, true],
      [[100, 70], [5, 70], false, true],
      [[6, 130], [130, 77], false, false],
      [[130, 6], [77, 130], true, true],
      [[130, 3], [130, 90], true, false],
      // LoRA's dA and dB at notebook scale: K (tokens) long against few row groups, so K is split (thinSplits)
      [[4096, 8], [4096, 256], true, false],
      [[4096, 96], [4096, 8], true, false],
      [[1000, 5], [1000, 200], true, false],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      await check(`matMul ${sa}x${sb} ${ta}${tb}`, (a, b) => tf.matMul(a, b, ta, tb), (a, b) => tf.matMul(a, b, ta, tb),
        { inputs: [f32(sa, 22), f32(sb, 23)], wrt: [0, 1] }, 1e-4);
    }
    // batch broadcast: forward only (tfjs's own BatchMatMul gradient does not reduce broadcast batch dims)
    await check('matMul broadcast', (a, b) => tf.matMul(a, b), (a, b) => tf.matMul(a, b), { inputs: [f32([3, 20, 12], 24), f32([12, 9], 25)], wrt: [] }, 1e-4);
  });

  it('the thin products 4 rows a thread, vec4 (SHARELORA_WEBGPU_THIN_BLOCK): every layout, both orientations, split', async (t) => {
    if (skip) return t.skip(skip);
    await withEnv('SHARELORA_WEBGPU_THIN_BLOCK', '1', async () => {
      // K a multiple of 4 (and M, where A is read as [K, M]), so each of these takes the blocked kernel; the gradients
      // (wrt both inputs) run more thin products, on the other layouts. N = 8 and 4 read B as vec4, N = 5, 6, 3 as scalars
      // where B is [K, N]; 100 rows leave the last workgroup's 64 part empty
      const cases: Array<[number[], number[], boolean, boolean]> = [
        [[100, 72], [72, 8], false, false],
        [[72, 100], [8, 72], true, true],
        [[100, 72], [5, 72], false, true],
        [[6, 132], [132, 76], false, false],
        [[132, 6], [76, 132], true, true],
        [[132, 3], [132, 92], true, false],
        [[36, 4], [36, 68], true, false],
        // LoRA's dA and dB shapes at notebook scale: K (tokens) long, so K is split (thinSplits) into slices of a multiple of 4
        [[4096, 8], [4096, 256], true, false],
        [[4096, 96], [4096, 8], true, false],
        [[1000, 4], [1000, 200], true, false],
      ];
      for (const [sa, sb, ta, tb] of cases) {
        await check(`blocked thin matMul ${sa}x${sb} ${ta}${tb}`, (a, b) => tf.matMul(a, b, ta, tb), (a, b) => tf.matMul(a, b, ta, tb),
          { inputs: [f32(sa, 32), f32(sb, 33)], wrt: [0, 1] }, 1e-4);
      }
    });
  });

  it('ops.ts dispatches to the fused kernels on webgpu', async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend('webgpu');
    const x = tf.tensor(randn(4 * 32, 30), [4, 32]);
    const g = tf.ones([32]) as tf.Tensor1D, b = tf.zeros([32]) as tf.Tensor1D;
    const prof = await tf.profile(() => ref.layerNorm(x, g, b, 1e-5));
    const names = prof.kernels.map((k) => k.name);
    assert.ok(names.includes('ShareLoraNorm'), `kernels run: ${names.join(', ')}`);
    tf.dispose([x, g, b, prof.result as tf.Tensor]);
  });

  it('GEMM tiles agree on awkward shapes', async (t) => {
    if (skip) return t.skip(skip);
    // the library's tiles; bench/gemm-variants.ts's are checked in gemm-variants.test.ts
    assert.deepEqual(await tileDisagreements(LIBRARY_TILES), []);
  });
});
