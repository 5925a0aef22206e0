import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

it("the built package imports by name from plain Node (package.json exports)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'sl-pkg-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'sharelora'));
  writeFileSync(join(dir, 'main.mjs'), `
    import { useBackend, loadModel, injectShareLoRA, loadAdapter, lossAndGrads, Trainer } from 'sharelora';
    const fns = [useBackend, loadModel, injectShareLoRA, loadAdapter, lossAndGrads, Trainer];
    const info = await useBackend('cpu');
    const model = await loadModel(${JSON.stringify(join(ROOT, 'test/fixtures/hf-reference/gpt2/model'))});
    const adapter = injectShareLoRA(model, { r: 4, targets: ['c_attn'], share: 'A' });
    console.log(JSON.stringify({ ok: fns.every((f) => typeof f === 'function'), backend: info.name, trainable: adapter.trainableParameterCount() }));
  `);
  const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop()!);
  // A: 4·64 once; B: 3 layers × 192·4
  assert.deepEqual(out, { ok: true, backend: 'cpu', trainable: 256 + 3 * 768 });
});
