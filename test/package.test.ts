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

it('the index is the curated API: what notebooks, the README and the kernel use, and no internals', async () => {
  const index = await import('../src/index.js') as Record<string, unknown>;
  const { readFileSync, readdirSync } = await import('node:fs');
  const { preloadList } = await import('../kernel/preload.js');
  const used = new Set<string>();
  // `import { a, b } from 'sharelora'` in the notebooks' code cells and the README's examples
  const sources = [readFileSync(join(ROOT, 'README.md'), 'utf8'),
    ...readdirSync(join(ROOT, 'notebooks')).filter((f) => f.endsWith('.ipynb')).map((f) =>
      (JSON.parse(readFileSync(join(ROOT, 'notebooks', f), 'utf8')) as { cells: { cell_type: string; source: string[] | string }[] }).cells
        .filter((c) => c.cell_type === 'code').map((c) => [c.source].flat().join('')).join('\n'))];
  for (const s of sources) for (const m of s.matchAll(/import\s*\{([^}]*)\}\s*from\s*['"]sharelora['"]/g)) {
    for (const n of m[1]!.split(',')) if (n.trim() && !n.trim().startsWith('type ')) used.add(n.trim().split(/\s+as\s+/)[0]!);
  }
  for (const e of preloadList()) if ('names' in e && e.from[0] === 'sharelora') e.names.forEach((n) => used.add(n));
  assert.ok(used.size > 30, `found ${used.size} names in use`);
  const missing = [...used].filter((n) => !(n in index));
  assert.deepEqual(missing, [], 'names the notebooks, README or kernel import from sharelora');
  for (const internal of ['lcsLength', 'tokenize13a', 'fileKey', 'tQuantile', 'serializeSafetensors', 'resolveGroups']) assert.ok(!(internal in index), `${internal} is internal`);
});

it('internals stay reachable under sharelora/internal/…', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sl-pkg-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'sharelora'));
  writeFileSync(join(dir, 'main.mjs'), `
    import { tokenize13a } from 'sharelora/internal/train/textmetrics';
    import { tQuantile } from 'sharelora/internal/analysis/distributions';
    console.log(JSON.stringify({ tok: tokenize13a('Hello, world.'), t: Math.round(tQuantile(0.975, 10) * 1000) / 1000 }));
  `);
  const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8' }).trim());
  assert.deepEqual(out, { tok: ['Hello', ',', 'world', '.'], t: 2.228 });
});
