/**
 * provenance(): the fields a notebook prints about where it ran, checked
 * against what git, the model file and the clock say independently.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { provenance } from '../../src/notebook/index.js';
import { withGpuName } from '../../src/notebook/provenance.js';
import { MIME_BUNDLE, type DisplayOutput } from '../../src/notebook/mime.js';
import { ROOT, testBackend } from '../helpers.js';

it('names the backend, the commit, the version and the model file it ran with, and shows as a table', async () => {
  const backend = await testBackend();
  const p = provenance({ model: 'sharelora-gpt2-mini', start: Date.now() - 3000 });
  const sha = createHash('sha256').update(readFileSync(join(ROOT, 'data', 'sharelora-gpt2-mini', 'model.safetensors'))).digest('hex');
  assert.equal(p.modelSha256, sha.slice(0, 16));
  assert.equal(p.model, 'sharelora-gpt2-mini');
  assert.equal(p.backend, backend);
  assert.equal(p.sharelora, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  let head: string | undefined;
  try { head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
  if (head) assert.ok(p.commit.startsWith(head.slice(0, 12)), `${p.commit} vs ${head}`);
  assert.ok(p.wallSeconds >= 3 && p.wallSeconds < 60, `wall time ${p.wallSeconds}`);
  assert.ok(Math.abs(Date.parse(p.date) - Date.now()) < 60_000);
  // plain data for JSON; the table is a non-enumerable display hook
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(p))), Object.keys(p));
  const shown = (p as unknown as { [MIME_BUNDLE]: () => DisplayOutput })[MIME_BUNDLE]();
  const html = String(shown.data['text/html']);
  for (const v of [sha.slice(0, 16), backend, p.commit.split(' ')[0], 'weights sha256']) assert.ok(html.includes(v), `table lacks ${v}`);
  // without a model: no model rows; wall time from process start
  const q = provenance();
  assert.equal(q.model, undefined);
  assert.ok(Math.abs(q.wallSeconds - process.uptime()) < 2);
});

it('explains bad options', () => {
  assert.throws(() => provenance({ modle: 'x' } as never), /option "modle" is not an option; did you mean "model"/);
  assert.throws(() => provenance({ model: 'no-such-model-anywhere' }), /option "model" "no-such-model-anywhere" is not a model folder, an embedded model \(.*sharelora-gpt2-mini/);
  assert.throws(() => provenance({ start: Date.now() + 60_000 }), /option "start" must be a past time/);
  assert.throws(() => provenance({ model: '' }), /option "model" must be a model name/);
});

it('lists the switches that change how the backend computes, and only those', () => {
  const saved = { ...process.env };
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith('SHARELORA_')) delete process.env[k];
    assert.equal(provenance().switches, 'defaults');
    process.env.SHARELORA_WEBGPU_REPLAY = '1';
    process.env.SHARELORA_GEMM_SPLITK = '0';
    process.env.SHARELORA_QUEUE_KEY = 'secret';
    process.env.SHARELORA_SHARD = '0/3';
    assert.equal(provenance().switches, 'SHARELORA_GEMM_SPLITK=0, SHARELORA_WEBGPU_REPLAY=1');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

it('puts the card\'s name before the NVIDIA driver string Dawn reports, where nvidia-smi names one', () => {
  assert.equal(withGpuName('webgpu', 'nvidia NVIDIA: 580.159.04 580.159.4.0', () => 'NVIDIA H100 80GB HBM3'), 'NVIDIA H100 80GB HBM3 (nvidia NVIDIA: 580.159.04 580.159.4.0)');
  assert.equal(withGpuName('webgpu', 'nvidia NVIDIA: 580.159.04', () => null), 'nvidia NVIDIA: 580.159.04');
  let asked = false;
  assert.equal(withGpuName('webgpu', 'mesa llvmpipe: Mesa 25.0.7', () => { asked = true; return 'x'; }), 'mesa llvmpipe: Mesa 25.0.7');
  assert.equal(withGpuName('wasm', 'CPU (WebAssembly, SIMD)', () => { asked = true; return 'x'; }), 'CPU (WebAssembly, SIMD)');
  assert.equal(asked, false, 'nvidia-smi is asked only for an NVIDIA webgpu adapter');
});
