/**
 * The progress callbacks outside a notebook, driven by a real Trainer on the
 * tiny GPT-2 fixture. (The in-notebook bar is tested through the kernel.)
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { progressBar } from '../../src/notebook/progress.js';
import { displaySink } from '../../src/notebook/session.js';
import { loadModelFromDir } from '../../src/models/load.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import { Trainer } from '../../src/train/trainer.js';
import { useBackend } from '../../src/backend/index.js';
import { REPO_ROOT } from '../kernel/env.js';

describe('progressBar outside a notebook', () => {
  before(async () => { await useBackend('cpu'); });

  it('prints step, loss, tokens/s and ETA lines, eval lines and a final line', async () => {
    assert.equal(displaySink(), undefined);
    const model = loadModelFromDir(join(REPO_ROOT, 'test', 'fixtures', 'hf-reference', 'gpt2', 'model'));
    const adapter = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A' });
    const batch = { inputIds: [[1, 2, 3, 4, 5, 6, 7, 8]], labels: [[1, 2, 3, 4, 5, 6, 7, 8]] };
    const lines: string[] = [];
    const out = { write: (s: string) => lines.push(...s.trimEnd().split('\n')) };
    const trainer = new Trainer(model, adapter, { lr: 1e-3, callbacks: [progressBar({ out, printEvery: 2 })] });
    await trainer.fit({ train: [batch, batch], epochs: 3, eval: [batch], evalEvery: 3 });
    const steps = lines.filter((l) => l.startsWith('step '));
    assert.deepEqual(steps.map((l) => l.split(' · ')[0]), ['step 1/6', 'step 2/6', 'step 4/6', 'step 6/6']);
    assert.match(steps[0]!, /^step 1\/6 · loss \d\.\d+ · [\d.]+k? tok\/s · 0:\d\d elapsed · ETA 0:\d\d$/);
    assert.equal(lines.filter((l) => /^eval @ step (3|6): loss \d\.\d+ · perplexity \d+/.test(l)).length, 2);
    assert.match(lines[lines.length - 1]!, /^done: step 6\/6 · loss/);
  });

  it('rejects bad options by name', () => {
    assert.throws(() => progressBar({ plotEvery: -1 }), /progressBar: plotEvery must be a non-negative integer; got -1/);
    assert.throws(() => progressBar({ printEvery: 1.5 }), /printEvery must be a non-negative integer/);
  });
});
