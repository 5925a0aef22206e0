/**
 * LoRA-FA, VeRA and Tied-LoRA train on webgpu through the fused kernels
 * (the per-layer vectors and VeRA's sliced projections reach the fused
 * low-rank GEMMs as ordinary factors): three AdamW steps on the tiny LLaMA
 * fixture give the cpu backend's losses to 1e-3 and lower the loss. Runs on
 * any WebGPU adapter (lavapipe in CI); skips with the reason when there is none.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAdapter } from '../../src/adapters/peft.js';
import { useBackend } from '../../src/backend/index.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import type { ShareLoraOptions } from '../../src/adapters/config.js';
import { loadModelFromDir } from '../../src/models/load.js';
import { Trainer } from '../../src/train/trainer.js';
import { FIXTURES } from '../helpers.js';
import { relErr, releaseGPU, webgpuUnavailable } from './helpers.js';

process.env.SHARELORA_GEMM_TILE ??= '32x32';
let skip: string | undefined;

const ids = [[5, 17, 99, 3, 250, 11, 7, 42], [8, 300, 21, 64, 2, 9, 1, 1]];
const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]];
const batch = { inputIds: ids, attentionMask: mask, labels: ids.map((r, i) => r.map((t, j) => (mask[i][j] ? t : -100))) };

async function losses(backend: string, o: ShareLoraOptions): Promise<number[]> {
  await useBackend(backend);
  const model = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
  const ad = injectShareLoRA(model, { targets: ['q', 'v', 'down'], seed: 1, ...o });
  const tr = new Trainer(model, ad, { lr: 2e-2 });
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push(await tr.step(batch));
  tr.dispose();
  // and the trained adapter saves and loads back on this backend
  const logits = async () => { const { logits: l } = model.forward({ inputIds: ids, attentionMask: mask }); const d = await l.data(); l.dispose(); return d; };
  const want = await logits();
  const dir = mkdtempSync(join(tmpdir(), 'sl-gpu-methods-'));
  await ad.save(dir);
  ad.unload();
  const back = await loadAdapter(model, dir);
  assert.ok(relErr(await logits(), want) < 1e-6, `${backend} ${o.method}: loaded adapter gives the saved one's logits`);
  back.unload();
  model.dispose();
  return out;
}

describe('LoRA-FA, VeRA and Tied-LoRA on webgpu', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP webgpu methods tests: ${skip}`); });
  after(() => releaseGPU());

  const specs: ShareLoraOptions[] = [
    { method: 'lora-fa', r: 4, alpha: 8, share: 'A' },
    { method: 'vera', r: 16, init: 'random' },
    { method: 'tied-lora', r: 4, alpha: 8, tiedTrain: 'VBUA' },
    { method: 'tied-lora', r: 4, alpha: 8, tiedTrain: 'VbUa' },
  ];
  for (const o of specs) {
    it(`${o.method}${o.tiedTrain ? ` ${o.tiedTrain}` : ''}: three AdamW steps as on cpu, the loss falls, save and load back`, async (t) => {
      if (skip) return t.skip(skip);
      const cpu = await losses('cpu', o);
      const gpu = await losses('webgpu', o);
      assert.ok(relErr(gpu, cpu) < 1e-3, `webgpu ${gpu} vs cpu ${cpu}`);
      assert.ok(gpu[2] < gpu[0], `loss falls on webgpu: ${gpu}`);
    });
  }
});
