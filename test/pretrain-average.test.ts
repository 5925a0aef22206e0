/**
 * scripts/pretrain/average.ts: the averaged folder holds the weighted mean of
 * its inputs, loads as a model, and mismatched inputs are refused naming the
 * file and the field or tensor.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, serializeSafetensors } from '../src/models/safetensors.js';
import { loadModelFromDir } from '../src/models/load.js';
import { averageModels } from '../scripts/pretrain/average.js';
import { FIXTURES } from './helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `sharelora-avg-${p}-`));

/** the reference GPT-2 fixture with every float tensor scaled by `k` (float16, as the pretraining scripts save) */
function scaledCopy(k: number, config?: Record<string, unknown>): string {
  const dir = tmp(String(k));
  const from = join(FIXTURES, 'gpt2', 'model');
  const cfg = { ...JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')), ...config };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const src = readSafetensors(join(from, 'model.safetensors'));
  const out: Record<string, { dtype: 'F16'; shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of src.tensors) if (t.dtype === 'F32' || t.dtype === 'F16') out[name] = { dtype: 'F16', shape: t.shape, data: Float32Array.from(t.data, (x) => x * k) };
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(out));
  writeFileSync(join(dir, 'training_stats.json'), JSON.stringify({ steps: k }));
  return dir;
}

describe('pretrain average', () => {
  it('writes the weighted mean of every tensor and a folder that loads', () => {
    const a = scaledCopy(1), b = scaledCopy(3), out = join(tmp('out'), 'avg');
    averageModels([a, b], [1, 3], out);
    const [fa, fb, fo] = [a, b, out].map((d) => readSafetensors(join(d, 'model.safetensors')));
    assert.equal(fo!.tensors.size, fa!.tensors.size);
    for (const [name, t] of fo!.tensors) {
      assert.equal(t.dtype, 'F16');
      const x = fa!.tensors.get(name)!.data, y = fb!.tensors.get(name)!.data;
      for (let i = 0; i < t.data.length; i += 97) {
        const want = 0.25 * x[i]! + 0.75 * y[i]!;
        assert.ok(Math.abs(t.data[i]! - want) <= 1e-3 * Math.max(1, Math.abs(want)), `${name}[${i}]: ${t.data[i]} against ${want}`);
      }
    }
    const stats = JSON.parse(readFileSync(join(out, 'training_stats.json'), 'utf8'));
    assert.deepEqual(stats.averagedFrom, [{ dir: a, weight: 0.25, tokensInAll: 0 }, { dir: b, weight: 0.75, tokensInAll: 0 }]);
    // no evaluation given: the mean has no metrics of its own, and its card says so (it once copied the first input's)
    assert.equal(stats.metrics, undefined);
    assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /Not evaluated/);
    loadModelFromDir(out).dispose();
  });

  it('takes its held-out metrics from --eval, keeps the inputs\' scores apart, and the lineage of the longest-trained input', () => {
    const a = scaledCopy(1), b = scaledCopy(3), out = join(tmp('out'), 'avg');
    writeFileSync(join(a, 'training_stats.json'), JSON.stringify({ steps: 10, tokensSeen: 100, trainSeconds: 5, tokensInAll: 100, command: 'prep\ntrain-a', metrics: { heldOutBitsPerByte: 1.5 } }));
    writeFileSync(join(b, 'training_stats.json'), JSON.stringify({ steps: 20, tokensSeen: 200, trainSeconds: 9, tokensInAll: 300, command: 'prep\ntrain-b', metrics: { heldOutBitsPerByte: 1.45 }, continuedFrom: { dir: a }, lineage: [{ command: 'train-a', steps: 10, tokensSeen: 100, trainSeconds: 5, metrics: { heldOutBitsPerByte: 1.5 } }] }));
    const evalFile = join(tmp('eval'), 'eval.json');
    writeFileSync(evalFile, JSON.stringify({ model: out, backend: 'webgpu', heldOutBitsPerByte: 1.4321, command: 'eval-cmd' }));
    averageModels([a, b], [1, 1], out, { evalFile });
    const stats = JSON.parse(readFileSync(join(out, 'training_stats.json'), 'utf8'));
    assert.equal(stats.metrics.heldOutBitsPerByte, 1.4321);
    assert.equal(stats.metrics.model, undefined);
    assert.equal(stats.tokensInAll, 300);
    assert.deepEqual(stats.averagedFrom.map((x: { metrics: { heldOutBitsPerByte: number } }) => x.metrics.heldOutBitsPerByte), [1.5, 1.45]);
    assert.deepEqual(stats.lineage.map((g: { command: string }) => g.command), ['train-a', 'train-b']);
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(card, /heldOutBitsPerByte 1\.4321/);
    assert.match(card, /train-a[\s\S]*train-b[\s\S]*average\.js[\s\S]*eval-cmd/);
    assert.throws(() => averageModels([a, b], [1, 1], join(tmp('x'), 'avg'), { evalFile: join(tmp('none'), 'missing.json') }), /--eval .*missing\.json: no such file/);
  });

  it('refuses folders of another architecture, naming the config field', () => {
    const a = scaledCopy(1), b = scaledCopy(1, { n_layer: 7 });
    assert.throws(() => averageModels([a, b], [1, 1], join(tmp('x'), 'avg')), (e: Error) => e.message.includes(join(b, 'config.json')) && e.message.includes('"n_layer"'));
  });

  it('refuses bad weights', () => {
    const a = scaledCopy(1), b = scaledCopy(2);
    assert.throws(() => averageModels([a, b], [1], join(tmp('x'), 'avg')), /--weights: expected 2 numbers/);
    assert.throws(() => averageModels([a, b], [1, -1], join(tmp('x'), 'avg')), /non-negative/);
    assert.throws(() => averageModels([a], [1], join(tmp('x'), 'avg')), /two or more/);
  });
});
