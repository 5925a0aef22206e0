/**
 * Not a test: concurrent-save.test.ts runs this as several processes at
 * once. SHARELORA_RACE=writer:<r>:<saves> trains a RoBERTa adapter of rank r
 * and saves it <saves> times to SHARELORA_RACE_DIR; SHARELORA_RACE=reader
 * resumes from that folder over and over until <dir>.stop exists, and checks
 * each checkpoint it gets is whole. Each prints one line of JSON at the end
 * and exits 1 on the first failure. Without SHARELORA_RACE it returns at once
 * (node --test also runs every .js under test/).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const role = process.env.SHARELORA_RACE;
const dir = process.env.SHARELORA_RACE_DIR!;
if (role) {
  const { injectShareLoRA, ShareLoraAdapter } = await import('../../src/adapters/sharelora.js');
  const { loadModelFromDir } = await import('../../src/models/load.js');
  const { Trainer } = await import('../../src/train/trainer.js');
  const { FIXTURES, testBackend } = await import('../helpers.js');
  await testBackend();
  const model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  const batch = { inputIds: [[0, 17, 99, 3, 250, 11, 7, 42]], labels: [1] };
  const fail = (what: string, e: unknown) => {
    process.stdout.write(`${JSON.stringify({ role, failed: what, error: `${(e as Error)?.name}: ${(e as Error)?.message}` })}\n`);
    process.exit(1);
  };
  if (role.startsWith('writer')) {
    const [, r, saves] = role.split(':').map(Number);
    const tr = new Trainer(model, injectShareLoRA(model, { r, targets: ['q', 'v'], share: 'A', seed: r }), { lr: 1e-3 });
    for (let i = 0; i < saves; i++) {
      await tr.step(batch);
      try {
        await tr.save(dir);
      } catch (e) {
        fail(`save ${i}`, e);
      }
    }
    process.stdout.write(`${JSON.stringify({ role, saves })}\n`);
  } else {
    let reads = 0, empty = 0;
    while (!existsSync(`${dir}.stop`)) {
      let tr: InstanceType<typeof Trainer> | undefined;
      try {
        tr = await Trainer.resume(dir, model);
      } catch (e) {
        // before the first save completes there is nothing to read; after it, there must always be a checkpoint
        if (reads === 0 && /no checkpoint here/.test((e as Error).message)) { empty++; await new Promise((res) => setTimeout(res, 5)); continue; }
        fail(`read ${reads}`, e);
      }
      const ad = tr!.adapter as InstanceType<typeof ShareLoraAdapter>;
      // one save's files, not a mix: moments shaped like this adapter's rank, a record per update
      if (tr!.records.length !== tr!.updates || ![4, 8].includes(ad.options.r)) fail(`read ${reads}`, new Error(`records ${tr!.records.length}, updates ${tr!.updates}, r ${ad.options.r}`));
      for (const [n, p] of ad.namedParameters()) if (tr!.optimizer.m.get(n)?.shape.join() !== p.shape.join()) fail(`read ${reads}`, new Error(`moment of ${n} does not fit rank ${ad.options.r}`));
      tr!.dispose();
      ad.unload();
      reads++;
    }
    process.stdout.write(`${JSON.stringify({ role, reads, empty })}\n`);
  }
}
