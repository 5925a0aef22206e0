/**
 * Step replay against the normal path on a notebook's workload: the embedded
 * 6-layer model as a spam classifier, 96 real e-mails in length-bucketed
 * batches of 8 (≤ 64 tokens), 3 epochs with evaluation every 10 updates,
 * trained twice from the same seeds on webgpu, without and with
 * SHARELORA_WEBGPU_REPLAY. Prints how many steps were replayed and the largest
 * difference between the two runs' losses and evaluations (bench/NOTES.md entry 17).
 *   node dist/bench/replay-check.js
 */
import * as sl from '../src/index.js';
import { replayStats } from '../src/train/step-replay.js';

const MODEL = 'sharelora-gpt2-mini';

async function run(replay: boolean) {
  process.env.SHARELORA_WEBGPU_REPLAY = replay ? '1' : '0';
  const tok = sl.loadTokenizer(MODEL);
  const train = await sl.datasets.spamAssassin({ split: 'train', limit: 96, seed: 1 });
  const val = await sl.datasets.spamAssassin({ split: 'validation', limit: 32, seed: 1 });
  const m = await sl.loadModel(MODEL, { task: 'seq-cls', numLabels: 2, seed: 0 });
  const ad = sl.injectShareLoRA(m, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'A', seed: 0 });
  const tr = new sl.Trainer(m, ad, { lr: 3e-3, seed: 0 });
  const b = sl.taskBatches(train, tok, { batchSize: 8, maxLength: 64, seed: 0 });
  const vb = sl.taskBatches(val, tok, { batchSize: 16, maxLength: 64, seed: 0, shuffle: false });
  const t0 = performance.now();
  const rows = (await tr.fit({ train: b, epochs: 3, eval: vb, evalEvery: 10 })).objects() as Array<{ loss: number; evalLoss: number | null }>;
  const ms = performance.now() - t0;
  const final = await tr.evaluate(vb);
  tr.dispose(); ad.unload(); m.dispose();
  return { lengths: b.map((x) => (x.inputIds as number[][])[0].length), losses: rows.map((r) => r.loss), evals: rows.filter((r) => r.evalLoss != null).map((r) => r.evalLoss as number), final, ms };
}

const info = await sl.useBackend('webgpu');
const plain = await run(false);
const before = replayStats.replayed;
const replayed = await run(true);
const worst = (a: number[], b: number[]) => a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i])), 0);
console.log(JSON.stringify({
  device: info.device, batchLengths: plain.lengths, updates: [plain.losses.length, replayed.losses.length],
  replayedSteps: replayStats.replayed - before, refused: replayStats.refused,
  worstLossDiff: worst(plain.losses, replayed.losses), worstEvalDiff: worst(plain.evals, replayed.evals),
  final: [plain.final, replayed.final], ms: [Math.round(plain.ms), Math.round(replayed.ms)],
}, null, 1));
