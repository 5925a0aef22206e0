/**
 * The benchmark's GEMM tiles and kernel variants (bench/gemm-variants.ts)
 * against tf.matMul on cpu, so a sweep never times a wrong kernel; and the
 * tile rules its switches install.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerGemmVariants, SESSION18_TILES, SESSION20_TILES, SESSION21_TILES, VARIANT_TILES } from '../../bench/gemm-variants.js';
import { chooseTile, nameOfTile, tileNames } from '../../src/backend/webgpu/index.js';
import * as tf from '@tensorflow/tfjs-core';
import { gemmSharedBytes, setPlanOverride, tileNamed, widePlan, type GemmTile } from '../../src/backend/webgpu/gemm.js';
import { webgpuBackend } from '../../src/backend/webgpu/dispatch.js';
import { epilogueDisagreements, PLAIN_CASE, randn, relErr, releaseGPU, TILE_CASES, tileDisagreements, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;

describe('bench GEMM variants', () => {
  before(async () => {
    registerGemmVariants();
    skip = await webgpuUnavailable();
    if (skip) console.log(`# SKIP webgpu GEMM variant tests: ${skip}`);
  });
  after(() => releaseGPU());

  it('registers every variant by name, and the default rule still picks the library\'s tiles', () => {
    for (const name of Object.keys(VARIANT_TILES)) assert.ok(tileNames().includes(name), name);
    // no SHARELORA_GEMM_K32 / SHARELORA_GEMM_COALESCED here: the rule is the library's
    if (process.env.SHARELORA_GEMM_TILE === undefined) {
      // (GPT-2 small's c_attn forward: 64×64 under the default efficiency rule, entry 31)
      assert.equal(nameOfTile(chooseTile(2048, 2304, 1, 768)), (process.env.SHARELORA_GEMM_RULE ?? 'efficiency') === 'efficiency' ? '64x64t4' : '128x128');
      assert.equal(nameOfTile(chooseTile(2048, 768, 1, 50257)), '64x64t4');
      assert.equal(nameOfTile(chooseTile(256, 256, 1, 64)), '32x32');
    }
  });

  it('a tile over the device\'s workgroup memory is a clear error, not a silent no-op', async (t) => {
    if (skip) return t.skip(skip);
    const limit = webgpuBackend().device.limits.maxComputeWorkgroupStorageSize;
    const over = Object.keys(VARIANT_TILES).find((n) => gemmSharedBytes(VARIANT_TILES[n], false) > limit);
    if (!over) return t.skip(`every variant fits this device's ${limit} bytes`);
    assert.throws(
      () => tf.engine().runKernel('ShareLoraMatMul', { a: tf.ones([64, 64]), b: tf.ones([64, 64]) }, { transA: false, transB: false, tile: over } as never),
      new RegExp(`needs ${gemmSharedBytes(VARIANT_TILES[over], false)} bytes of workgroup memory; this device allows ${limit}`),
    );
  });

  it('a plan override runs the library\'s unsplit products on another kernel, epilogue included', async (t) => {
    if (skip) return t.skip(skip);
    // 1280 × 1280 × 64: 100 tiles of 128×128, which every rule keeps on 128×128, unsplit (K is short), and the wide plan
    // on its 32-deep 128×128
    const M = 1280, N = 1280, K = 64, r = 3;
    assert.equal(nameOfTile(chooseTile(M, N, 1, K)), '128x128');
    const a = randn(M * K, 1), b = randn(K * N, 2), bias = randn(N, 3), u = randn(M * r, 4), v = randn(N * r, 5);
    const run = () => tf.engine().runKernel('ShareLoraMatMul',
      { a: tf.tensor(a, [M, K]), b: tf.tensor(b, [K, N]), bias: tf.tensor(bias, [N]), u: tf.tensor(u, [M, r]), v: tf.tensor(v, [N, r]) },
      { transA: false, transB: false, alpha: 0.5, lrScale: 0.7, lrVT: true } as never) as tf.Tensor;
    const want = await run().data();
    const limit = webgpuBackend().device.limits.maxComputeWorkgroupStorageSize;
    const onBig = (tile: GemmTile) => setPlanOverride((_M, _N, _K, plan) => (plan.S === 1 ? { t: tile, S: 1 } : undefined));
    try {
      // a tile this device cannot hold: the throw shows the override, not the library's tile, was dispatched
      const over = Object.keys(VARIANT_TILES).find((n) => gemmSharedBytes(VARIANT_TILES[n], false) > limit);
      if (over) {
        onBig(VARIANT_TILES[over]);
        assert.throws(run, /bytes of workgroup memory/);
      }
      onBig(VARIANT_TILES['128x128k8dbun']);
      assert.ok(relErr(await run().data(), want) < 1e-5);
    } finally {
      setPlanOverride(undefined);
    }
  });

  it('the wide plan: 128 × 256 over the fewest K-slices that fill 90% of a round, else 32-deep 128 × 128 for unsplit 128 × 128', () => {
    const BIG = tileNamed('128x128', 'test'), big = { t: BIG, S: 1 }, mid = { t: tileNamed('64x64t4', 'test'), S: 1 };
    const plan = (M: number, N: number, K: number, from = big, canSplit = true, batch = 1) => {
      const p = widePlan(M, N, K, batch, from, canSplit, 132);
      return `${nameOfTile(p.t)}@s${p.S}`;
    };
    // GPT-2 small's products (bench/NOTES.md entries 33-34): the LM head's forward unsplit, N = 3,072 over 2, K = 3,072
    // over 8, whatever the rule had chosen
    assert.equal(plan(2048, 50257, 768), '128x256@s1');
    assert.equal(plan(2048, 3072, 768, mid), '128x256@s2');
    assert.equal(plan(2048, 768, 3072, { t: BIG, S: 3 }), '128x256@s8');
    // unsplittable: 128 × 256 only where it fills unsplit; else the 32-deep tile for unsplit 128 × 128, the rest as chosen
    assert.equal(plan(2048, 768, 3072, big, false), '128x128k32@s1');
    assert.equal(plan(2048, 768, 3072, mid, false), '64x64t4@s1');
    // 768 × 768 needs 4 slices of 192, under the 256 of K a slice keeps; an LM head's dX (K > 4096) keeps split-K's plan
    assert.equal(plan(2048, 768, 768), '128x128k32@s1');
    assert.equal(plan(2048, 768, 50257, { t: BIG, S: 6 }), '128x128@s6');
    assert.equal(plan(64, 4096, 768, mid), '64x64t4@s1');
    // a batched product (attention's) keeps its tile, 128 × 128 on its 32-deep form, however many tiles it makes
    assert.equal(plan(256, 256, 64, big, false, 96), '128x128k32@s1');
    assert.equal(plan(1024, 1024, 64, big, false, 33), '128x128k32@s1');
    assert.equal(plan(1024, 1024, 64, mid, false, 33), '64x64t4@s1');
    // with 48 KB of workgroup memory (the H100's) an unsplit 128 × 256 is 32-deep (SHARELORA_GEMM_WIDE_BK=auto), a split one not
    const deep = (M: number, N: number, K: number, from = big) => { const p = widePlan(M, N, K, 1, from, true, 132, 49152); return `${nameOfTile(p.t)}@s${p.S}`; };
    assert.equal(deep(2048, 50257, 768), '128x256k32@s1');
    assert.equal(deep(2048, 3072, 768, mid), '128x256@s2');
  });

  it('the fill plan: 128 × 256 or 128 × 192 over the K-slices the wave model times fastest, padding counted', () => {
    const big = { t: tileNamed('128x128', 'test'), S: 1 };
    const fill = (M: number, N: number, K: number, bytes = 32768, canSplit = true) => {
      const p = widePlan(M, N, K, 1, big, canSplit, 132, bytes, true);
      return `${nameOfTile(p.t)}@s${p.S}`;
    };
    // c_fc forward and mlp.c_proj dX: 256 tiles of 128 × 192 unsplit (97% of two rounds), 32-deep where 40 KB is granted
    assert.equal(fill(2048, 3072, 768), '128x192@s1');
    assert.equal(fill(2048, 3072, 768, 49152), '128x192k32@s1');
    // N = 768: attn.c_proj both ways (K = 768) and c_attn dX (K = 2,304) on 64 tiles over 2 slices; c_fc dX and
    // mlp.c_proj forward (K = 3,072) stay on 128 × 256 over 8, since the 16-deep 128 × 192 ran at 0.88 of 128 × 256's
    // rate in session 21's H100 profile (0.349 against 0.338 ms a layer over 2 slices: bench/NOTES.md "39-41, measured")
    assert.equal(fill(2048, 768, 768), '128x192@s2');
    assert.equal(fill(2048, 768, 2304), '128x192@s2');
    assert.equal(fill(2048, 768, 3072), '128x256@s8');
    // c_attn forward: 192 tiles fill 73% unsplit, 384 fill 97% over 2
    assert.equal(fill(2048, 2304, 768), '128x192@s2');
    // where 128 × 256 fills, it is kept (the LM head's forward); unsplittable and unfilled, the wide plan's fallback
    assert.equal(fill(2048, 50257, 768, 49152), '128x256k32@s1');
    assert.equal(fill(2048, 768, 3072, 32768, false), '128x128k32@s1');
    // a 256-wide product (the notebook's mlp.c_proj forward): 128 × 192 would be two tiles a third empty, so 128 × 256 over 4
    assert.equal(fill(4096, 256, 1024), '128x256@s4');
    // where even the best choice makes under half a round of workgroups, the wide plan decides
    assert.equal(fill(4096, 256, 256), '128x128k32@s1');
    // the wide plan itself never picks 128 × 192
    assert.equal(nameOfTile(widePlan(2048, 3072, 768, 1, big, true, 132, 49152, false).t), '128x256');
  });

  it('128 × 192 (8 × 12 a thread) and the sweep\'s 192 × 192 (12 × 12) agree with the cpu on both transposes, with bias and low-rank epilogue, unsplit and split', async (t) => {
    if (skip) return t.skip(skip);
    const skipped: string[] = [];
    assert.deepEqual(await tileDisagreements(['128x192', '128x192k32'], skipped, [...TILE_CASES, ...PLAIN_CASE]), []);
    // the sweep's variants on the layout the sweep runs them on (each lavapipe compile of these unrolled kernels is seconds)
    assert.deepEqual(await tileDisagreements(SESSION21_TILES, skipped, PLAIN_CASE), []);
    assert.deepEqual(await epilogueDisagreements([[300, 520, 900, false, false, '128x192', 2, 'lrT+bias', 8], [300, 400, 90, true, true, '128x192', 1, 'lrN+bias']]), []);
    if (skipped.length) console.log(`# not run on this device (over its workgroup memory): ${skipped.join(', ')}`);
  });

  it('128 × 256 agrees with the cpu with bias and low-rank epilogue, unsplit and as a split-K partial (epilogue in the reduce)', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await epilogueDisagreements([[300, 520, 900, false, false, '128x256', 3, 'lrT+bias'], [300, 520, 90, false, false, '128x256', 1, 'lrT+bias']]), []);
    // the 32-deep form where the device allows it (the GPU machine's test part): a split whose slices (304 of K) are
    // no multiple of 32, so a slice's last K-slice is part past its end
    const limit = webgpuBackend().device.limits.maxComputeWorkgroupStorageSize;
    for (const name of ['128x256k32']) {
      if (gemmSharedBytes(tileNamed(name, 'test'), true) > limit) { console.log(`# ${name}: over this device's ${limit} bytes of workgroup memory, not run`); continue; }
      assert.deepEqual(await epilogueDisagreements([[300, 520, 900, false, false, name, 3, 'lrT+bias'], [300, 520, 90, true, true, name, 1, 'lrT+bias']]), []);
    }
  });

  it('every variant tile, and the wide plan\'s two, agrees with tf.matMul on awkward shapes', async (t) => {
    if (skip) return t.skip(skip);
    const skipped: string[] = [];
    // lavapipe compiles each kernel in 1-45 s without a shader cache (a fresh CI machine): the variants of
    // session 17 and before keep the two transposed layouts they were always checked on, session 18's are
    // checked on the plain layout, which is what the sweep runs them on
    const recent = new Set([...SESSION18_TILES, ...SESSION20_TILES, ...SESSION21_TILES]);
    const older = Object.keys(VARIANT_TILES).filter((n) => !recent.has(n));
    assert.deepEqual(await tileDisagreements(older, skipped, TILE_CASES), []);
    assert.deepEqual(await tileDisagreements(SESSION18_TILES, skipped, PLAIN_CASE), []);
    // the wide plan's two tiles (library tiles since session 19), on the layouts they had here as session 17-18 variants
    assert.deepEqual(await tileDisagreements(['128x128k32'], skipped, TILE_CASES), []);
    assert.deepEqual(await tileDisagreements(['128x256'], skipped, PLAIN_CASE), []);
    // its 32-deep form (48 KB, so on the GPU machine only) and, wherever this runs, the same generator at that depth on
    // a tile that fits 32 KB
    assert.deepEqual(await tileDisagreements(['128x256k32', ...SESSION20_TILES], skipped, PLAIN_CASE), []);
    if (skipped.length) console.log(`# not run on this device (over its workgroup memory): ${skipped.join(', ')}`);
  });
});
