/**
 * SHARELORA_* switches: read through src/backend/flags.ts only (the
 * benchmark's own declared in bench/flags.ts with its readers), all
 * documented in README.md's table, and a value that cannot be meant names
 * the variable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { flags } from '../src/backend/flags.js';
import { ROOT, withEnv } from './helpers.js';

const FLAGS_FILE = 'src/backend/flags.ts';
const BENCH_FLAGS_FILE = 'bench/flags.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' || name === 'fixtures' || name === 'results' ? [] : sources(p);
    return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}


describe('SHARELORA_* switches', () => {
  const names = (file: string) => readFileSync(join(ROOT, file), 'utf8').match(/'SHARELORA_[A-Z0-9_]+'/g)!.map((s) => s.slice(1, -1));
  const declared = [...new Set([...names(FLAGS_FILE), ...names(BENCH_FLAGS_FILE)])].sort();

  it('only src/backend/flags.ts reads them', () => {
    const readers = ['src', 'kernel', 'bench', 'scripts'].flatMap((d) => sources(join(ROOT, d)))
      .filter((p) => relative(ROOT, p) !== FLAGS_FILE)
      .filter((p) => /process\.env(\.SHARELORA_|\[)/.test(readFileSync(p, 'utf8').replace(/process\.env\.SHARELORA_[A-Z0-9_]+ = /g, '')))
      .map((p) => relative(ROOT, p));
    assert.deepEqual(readers, []);
  });

  it('the library reads none of the benchmark\'s own switches', () => {
    const library = new Set(names(FLAGS_FILE));
    assert.deepEqual(names(BENCH_FLAGS_FILE).filter((n) => library.has(n)), []);
    const readers = sources(join(ROOT, 'src')).filter((p) => /\bbenchFlags\b|from\s*['"][^'"]*bench\/flags/.test(readFileSync(p, 'utf8'))).map((p) => relative(ROOT, p));
    assert.deepEqual(readers, []);
  });

  it('README.md documents exactly the ones flags.ts and bench/flags.ts read', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const rows = readme.split('\n').filter((l) => /^\| `SHARELORA_/.test(l)).map((l) => /`(SHARELORA_[A-Z0-9_]+)`/.exec(l)![1]).sort();
    assert.deepEqual(rows, declared);
  });

  it('an unusable value is an error naming the variable and what it takes', () => {
    withEnv('SHARELORA_PLOT_PNG', 'false', () => assert.throws(() => flags.plotPng, /^Error: SHARELORA_PLOT_PNG must be 0 \(off\) or 1 \(on\); got "false"$/));
    withEnv('SHARELORA_GPU_SMS', '13.5', () => assert.throws(() => flags.gpuSms, /SHARELORA_GPU_SMS must be a positive integer \(.*\); got "13.5"/));
    withEnv('SHARELORA_WEBGPU_MATMUL', 'cublas', () => assert.throws(() => flags.webgpuMatmul, /SHARELORA_WEBGPU_MATMUL must be one of sharelora, tfjs; got "cublas"/));
    withEnv('SHARELORA_INTERRUPT_GRACE_MS', '-1', () => assert.throws(() => flags.interruptGraceMs, /SHARELORA_INTERRUPT_GRACE_MS must be a non-negative integer \(milliseconds\); got "-1"/));
  });

  it('empty means unset; switches read on access follow the environment', () => {
    withEnv('SHARELORA_SMOKE', '', () => assert.equal(flags.smoke, false));
    withEnv('SHARELORA_SMOKE', '1', () => assert.equal(flags.smoke, true));
    withEnv('SHARELORA_BACKEND', undefined, () => assert.equal(flags.backend, 'auto'));
    withEnv('SHARELORA_BACKEND', 'wasm', () => assert.equal(flags.backend, 'wasm'));
    withEnv('SHARELORA_QUEUE_KEY', '', () => assert.equal(flags.queueKey, undefined));
  });

  it('the others are read once: a later change does not move them', () => {
    withEnv('SHARELORA_WEBGPU_SUBMIT_BATCH', '64', () => assert.equal(flags.webgpuSubmitBatch, 64));
    withEnv('SHARELORA_WEBGPU_SUBMIT_BATCH', '8', () => assert.equal(flags.webgpuSubmitBatch, 64));
  });
});
