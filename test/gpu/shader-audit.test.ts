/**
 * The loops of our hottest kernels carry no bounds clamps from Dawn's compiler (bench/shader-audit.ts,
 * bench/NOTES.md entry 28): a GEMM's K loop stores and reads shared memory at offsets Tint can prove in range,
 * and the flash attention forward's key loop has a constant trip count. A change that hides an index's range
 * again (a `var` offset, a run-time trip count) puts a clamp on every such access, which this catches.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GPT2_SMALL } from '../../bench/run.js';
import { auditSpec } from '../../bench/shader-audit.js';
import type { WorkerSpec } from '../../bench/worker.js';
import { webgpuUnavailable } from './helpers.js';

// a small GPT-2 (head dim 64, so the flash forward runs); one SM in the plan's eyes, so its products fill their rounds
// unsplit on the wide plan's 128 × 256 tile, which GPT-2 small's LM head and block products run on an H100
const SPEC: WorkerSpec = {
  backend: 'webgpu',
  config: { ...GPT2_SMALL, n_layer: 1, n_embd: 256, n_head: 4, vocab_size: 1000, n_positions: 128 },
  batch: 2, seq: 128, variant: 'lora', r: 8, alpha: 16, targets: ['c_attn'], steps: 1, warmup: 1,
};

describe('shader audit (Tint clamps in loops)', () => {
  it('no GEMM loop, and the flash attention kernels\' loops only their own row clamps', async (t) => {
    const skip = await webgpuUnavailable();
    if (skip) return t.skip(skip);
    const rows = auditSpec(SPEC, { SHARELORA_GPU_SMS: '1', SHARELORA_WEBGPU_FLASH_ATTENTION: '1', SHARELORA_WEBGPU_FLASH_BACKWARD: '1', SHARELORA_GEMM_UNROLL: '1' });
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const gemms = rows.filter((r) => /^gemm_\d+x\d+x\d+_/.test(r.key));
    // (32-deep where the device grants 48 KB of workgroup memory, as the H100 does: session 21's GPU run failed on x16 alone)
    assert.ok(gemms.some((r) => /^gemm_128x256x(16|32)_8x16un_/.test(r.key)), `a 128 × 256 GEMM ran: ${[...byKey.keys()].join(', ')}`);
    assert.ok(gemms.some((r) => r.key.endsWith('lrT') || r.key.endsWith('lrN')), 'a GEMM with the low-rank epilogue ran');
    for (const r of gemms) assert.equal(r.clampsInLoops, 0, `${r.key}: ${r.clampsInLoops} clamps inside loops`);
    const flash = rows.find((r) => r.key.startsWith('attn_flash_') && !r.key.startsWith('attn_flash_bwd_'));
    assert.ok(flash, 'the flash attention forward ran');
    // its key-tile load loop clamps the key row itself (min(j0 + e / D4, T - 1)); the 36 a key tile it had are gone
    assert.ok(flash.clampsInLoops <= 3, `${flash.key}: ${flash.clampsInLoops} clamps inside loops`);
    // the flash backward's two kernels likewise (69 each before; 4 left: their staging loops' own row clamps)
    const back = rows.filter((r) => r.key.startsWith('attn_flash_bwd_'));
    assert.equal(back.length, 2, 'both flash backward kernels ran');
    for (const r of back) assert.ok(r.clampsInLoops <= 4, `${r.key}: ${r.clampsInLoops} clamps inside loops`);
  });
});
