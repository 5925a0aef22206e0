import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors } from '../src/models/safetensors.js';
import { useBackend } from '../src/backend/index.js';

/** repo root (tests run from dist/test) */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'hf-reference');

/** with `name` set to `value` (or removed) for the length of f, an async f's promise included */
export function withEnv<T>(name: string, value: string | undefined, f: () => T): T {
  const saved = process.env[name];
  const set = (v: string | undefined) => { if (v === undefined) delete process.env[name]; else process.env[name] = v; };
  set(value);
  let r: T;
  try {
    r = f();
  } catch (e) {
    set(saved);
    throw e;
  }
  if (r instanceof Promise) return r.finally(() => set(saved)) as T;
  set(saved);
  return r;
}

/** Tests run on SHARELORA_BACKEND (default cpu); tolerances widen on GPU backends. */
export async function testBackend(): Promise<string> {
  const name = process.env.SHARELORA_BACKEND || 'cpu';
  await useBackend(name);
  return name;
}

export function expected(family: string): Map<string, { shape: number[]; data: Float32Array | Int32Array }> {
  return readSafetensors(join(FIXTURES, family, 'expected.safetensors')).tensors;
}

/** max |a-b| / (max|b| + tiny), over positions where keep is true */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, keep?: (i: number) => boolean): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (keep && !keep(i)) continue;
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den + 1e-12);
}

/** values of a tensor; async because webgpu cannot read back synchronously in Node */
export async function toArray(t: tf.Tensor): Promise<Float32Array> {
  return await t.data() as Float32Array;
}

/** The README's quick example, verbatim (the ```js block under "## Quick example"). */
export function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick example'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no ```js block under "## Quick example"');
  return m[1]!;
}

/**
 * Runs an ES-module script in its own Node process as shard `i` of `n`
 * (SHARELORA_SHARD, SHARELORA_SHARD_SESSION) and returns the JSON its last
 * line prints; fails on a non-zero exit or after 60 s.
 */
export function runShardProcess(script: string, i: number, n: number, session: string): Promise<any> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, SHARELORA_SHARD: `${i}/${n}`, SHARELORA_SHARD_SESSION: session } });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { p.kill(); rej(new Error('shard timed out')); }, 60_000);
    p.on('close', (code) => { clearTimeout(timer); code === 0 ? res(JSON.parse(out.trim().split('\n').at(-1)!)) : rej(new Error(out)); });
  });
}
