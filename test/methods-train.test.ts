/**
 * LoRA-FA, VeRA and Tied-LoRA train on both CPU backends: five AdamW steps on
 * the tiny RoBERTa classifier (its head trained too, as PEFT's
 * modules_to_save) lower the loss on cpu, and wasm follows the same curve.
 * test/gpu/methods.test.ts does the same on webgpu.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useBackend } from '../src/backend/index.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import type { ShareLoraOptions } from '../src/adapters/config.js';
import { loadModelFromDir } from '../src/models/load.js';
import { Trainer } from '../src/train/trainer.js';
import { FIXTURES, relErr } from './helpers.js';

const ids = [[0, 17, 99, 3, 250, 11, 7, 42], [0, 300, 21, 64, 2, 9, 1, 1], [0, 5, 6, 7, 8, 9, 10, 11]];
const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]];
const batch = { inputIds: ids, attentionMask: mask, labels: [0, 2, 1] };

async function curve(backend: string, o: ShareLoraOptions): Promise<number[]> {
  await useBackend(backend);
  const model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  const ad = injectShareLoRA(model, { targets: ['query', 'value'], seed: 2, ...o });
  const tr = new Trainer(model, ad, { lr: 1e-2 });
  const out: number[] = [];
  for (let i = 0; i < 5; i++) out.push(await tr.step(batch));
  tr.dispose();
  ad.unload();
  model.dispose();
  return out;
}

describe('LoRA-FA, VeRA and Tied-LoRA train on cpu and wasm', () => {
  for (const o of [{ method: 'lora-fa', r: 4, share: 'A' }, { method: 'vera', r: 32 }, { method: 'tied-lora', r: 4 }, { method: 'tied-lora', r: 4, tiedTrain: 'VbUa' }] as ShareLoraOptions[]) {
    it(`${o.method}${o.tiedTrain ? ` ${o.tiedTrain}` : ''}`, async () => {
      const cpu = await curve('cpu', o);
      assert.ok(cpu[4] < cpu[0], `loss falls on cpu: ${cpu}`);
      const wasm = await curve('wasm', o);
      assert.ok(relErr(wasm, cpu) < 1e-4, `wasm ${wasm} vs cpu ${cpu}`);
    });
  }
});
