/**
 * What one replayed, steady-state training step asks of the GPU queue, in order (run-length coded): the
 * encoder's copies (c) and compute passes (P), dispatches (d), queue submits (S), writes (w) and the one read
 * (M). A 12-layer, 64-wide GPT-2 with LoRA or ShareA on c_attn, r = 8, AdamW without clipping (the bench's
 * adapter recipe), on whatever webgpu device is here (lavapipe in CI machines): structure, not time.
 *   node dist/bench/step-trace.js lora|sharea
 * (bench/NOTES.md entry 42: LoRA's and ShareA's steps, whose wall clocks differed by 4.3 ms on an H100 for the same
 * kernels and GPU time)
 */
import { injectShareLoRA, randomModel, Trainer, useBackend } from '../src/index.js';

type Proto = Record<string, (...a: unknown[]) => unknown>;

async function main(): Promise<void> {
  const variant = process.argv[2];
  if (variant !== 'lora' && variant !== 'sharea') throw new Error(`usage: node dist/bench/step-trace.js lora|sharea (got ${JSON.stringify(variant)})`);
  await useBackend('webgpu');
  let on = false;
  const ev: string[] = [];
  const g = globalThis as unknown as Record<string, { prototype: Proto }>;
  const wrap = (cls: string, method: string, tag: string) => {
    const o = g[cls].prototype, f = o[method];
    o[method] = function (this: unknown, ...a: unknown[]) { if (on) ev.push(tag); return f.apply(this, a); };
  };
  wrap('GPUCommandEncoder', 'beginComputePass', 'P'); wrap('GPUCommandEncoder', 'copyBufferToBuffer', 'c');
  wrap('GPUComputePassEncoder', 'dispatchWorkgroups', 'd'); wrap('GPUQueue', 'submit', 'S');
  wrap('GPUQueue', 'writeBuffer', 'w'); wrap('GPUBuffer', 'mapAsync', 'M');
  const model = randomModel({ model_type: 'gpt2', n_layer: 12, n_embd: 64, n_head: 4, vocab_size: 500, n_positions: 64 }, { seed: 1 });
  const adapter = injectShareLoRA(model, { r: 8, alpha: 16, targets: ['c_attn'], share: variant === 'lora' ? 'none' : 'A' });
  const trainer = new Trainer(model, adapter, { lr: 1e-4, weightDecay: 0.01 });
  const ids = Array.from({ length: 2 }, (_, b) => Array.from({ length: 32 }, (_, t) => (b * 31 + t * 7) % 500));
  const batch = { inputIds: ids, labels: ids };
  trainer.startReplay();
  // two warm-up steps, two recorded, one verified (src/train/step-replay.ts), then replays
  for (let i = 0; i < 8; i++) await trainer.step(batch);
  on = true;
  await trainer.step(batch);
  on = false;
  trainer.endReplay();
  let out = '', prev = '', n = 0;
  for (const e of [...ev, '']) {
    if (e === prev) { n++; continue; }
    if (prev) out += `${prev}${n > 1 ? n : ''} `;
    prev = e; n = 1;
  }
  console.log(`${variant}: ${out.trim()}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
