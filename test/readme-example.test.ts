/**
 * The README's quick example, verbatim: as a Node script of a project that
 * installed the package, and as one cell of the kernel. Both start in an
 * empty folder, so the example may not lean on the repository's layout.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, readmeExample } from './helpers.js';
import { TestKernel, ofType, streamText } from './kernel/client.js';


/** five losses, one per step, falling; then the adapter folder exists */
function checkRun(printed: string, cwd: string): void {
  const numbers = printed.trim().split('\n').map(Number);
  assert.ok(numbers.length >= 6 && numbers.every(Number.isFinite), `the example prints numbers:\n${printed}`);
  const losses = numbers.slice(-5);
  assert.ok(losses[4] < losses[0], `the loss falls over the five steps: ${losses}`);
  assert.ok(existsSync(join(cwd, 'adapters', 'imdb-shareA', 'adapter_config.json')), 'the adapter was saved where the example says');
}

it('README quick example runs as a plain Node script', { timeout: 300_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sl-readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'sharelora'));
  writeFileSync(join(dir, 'example.mjs'), readmeExample());
  const out = execFileSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', env: { ...process.env, SHARELORA_BACKEND: 'wasm' } });
  checkRun(out, dir);
});

it('README quick example runs as a kernel cell', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sl-readme-k-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const k = await TestKernel.start({ cwd: dir, env: { ...process.env, SHARELORA_BACKEND: 'wasm' } });
  t.after(() => k.shutdown());
  const ex = await k.execute(readmeExample(), {}, 280_000);
  const errors = ofType(ex.outputs, 'error').map((m) => `${m.content.ename}: ${m.content.evalue}`);
  assert.equal(ex.reply.content.status, 'ok', `cell failed: ${errors.join('\n')} ${streamText(ex.outputs, 'stderr')}`);
  checkRun(streamText(ex.outputs, 'stdout'), dir);
});
