/**
 * Not a test: checkpoint.test.ts runs this as a child process and SIGKILLs
 * it mid-save. It trains RoBERTa a little and saves over and over, printing
 * "saving" before and "saved <updates>" after each save. Without
 * SHARELORA_SAVE_CHILD it returns at once (node --test also runs every .js
 * under test/, so the heavy imports are inside the branch).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SHARELORA_SAVE_CHILD;
if (dir) {
  const { injectShareLoRA } = await import('../../src/adapters/sharelora.js');
  const { loadModelFromDir } = await import('../../src/models/load.js');
  const { Trainer } = await import('../../src/train/trainer.js');
  const { FIXTURES, testBackend } = await import('../helpers.js');
  await testBackend();
  const model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  // each round continues from what the previous (killed) round left
  const tr = existsSync(dir) || existsSync(`${dir}.prev`)
    ? await Trainer.resume(dir, model)
    : new Trainer(model, injectShareLoRA(model, { r: 8, targets: ['q', 'k', 'v', 'o'], share: 'none' }), { lr: 1e-3 });
  const batch = { inputIds: [[0, 17, 99, 3, 250, 11, 7, 42]], labels: [1] };
  for (let i = 0; ; i++) {
    if (i % 3 === 0) await tr.step(batch);
    process.stdout.write('saving\n');
    await tr.save(dir);
    process.stdout.write(`saved ${tr.updates}\n`);
  }
}
