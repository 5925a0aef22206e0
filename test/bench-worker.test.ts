/**
 * bench/worker.js's spec: the neighbours' steps through its `adapter` field (injectShareLoRA's own options, checked
 * there), and the keys the spec itself says refused rather than silently overridden.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const CONFIG = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: 2, n_embd: 32, n_head: 4, vocab_size: 128, n_positions: 64,
  resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', initializer_range: 0.02,
};

function worker(extra: Record<string, unknown>): { ok: boolean; error?: string; trainableParams?: number; medianMs?: number } {
  const spec = { backend: 'wasm', config: CONFIG, batch: 2, seq: 16, variant: 'lora', r: 4, alpha: 8, targets: ['c_attn'], steps: 2, warmup: 1, ...extra };
  const p = spawnSync(process.execPath, [join(ROOT, 'dist/bench/worker.js'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 120_000 });
  const line = p.stdout.split('\n').find((l) => l.startsWith('@@RESULT '));
  assert.ok(line, `no result line; stderr: ${p.stderr.slice(-500)}`);
  return JSON.parse(line.slice('@@RESULT '.length));
}

describe('bench worker spec: adapter', () => {
  it('trains VeRA and Tied-LoRA steps with their own trainable counts', () => {
    // VeRA: d (r) and b (out) a target; c_attn's out is 3 × 32 over 2 layers
    const vera = worker({ adapter: { method: 'vera' } });
    assert.equal(vera.error, undefined);
    assert.equal(vera.trainableParams, 2 * (4 + 96));
    // Tied-LoRA VBUA: A (4 × 32) and B (96 × 4) tied, u (4) and v (96) a layer
    const tied = worker({ adapter: { method: 'tied-lora', tiedTrain: 'VBUA' } });
    assert.equal(tied.error, undefined);
    assert.equal(tied.trainableParams, 4 * 32 + 96 * 4 + 2 * (4 + 96));
    assert.ok(tied.medianMs! > 0);
  });

  it('refuses a misspelled option, a key the spec says, and a tie VeRA does not take', () => {
    assert.match(worker({ adapter: { methd: 'vera' } }).error!, /"methd" is not an option; did you mean "method"/);
    assert.match(worker({ adapter: { share: 'B' } }).error!, /adapter must not set share/);
    assert.match(worker({ variant: 'sharea', adapter: { method: 'vera' } }).error!, /method vera ties by construction; give variant lora/);
    assert.match(worker({ variant: 'full', r: undefined, alpha: undefined, targets: undefined, adapter: { method: 'vera' } }).error!, /adapter is an object of injectShareLoRA options for variant lora or sharea/);
  });
});
