/**
 * The benchmark's GEMM tiles and kernel variants (bench/gemm-variants.ts)
 * against tf.matMul on cpu, so a sweep never times a wrong kernel; and the
 * tile rules its switches install.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerGemmVariants, VARIANT_TILES } from '../../bench/gemm-variants.js';
import { chooseTile, nameOfTile, tileNames } from '../../src/backend/webgpu/index.js';
import { releaseGPU, tileDisagreements, webgpuUnavailable } from './helpers.js';

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

  it('every variant tile agrees with tf.matMul on awkward shapes', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await tileDisagreements(Object.keys(VARIANT_TILES)), []);
  });
});
