/**
 * GPU memory that one process of a notebook's full-size run holds, phase by
 * phase: the recipe of each notebook's `run` (model, batch shapes, evaluation
 * and decoding batches) replayed on webgpu, with tfjs's accounting after each
 * phase. Two runs in one process show whether memory is given back between runs.
 *   node dist/scripts/notebook-memory.js [--updates N] [--eval-batches N] [--runs N] [--decode-tokens N] NB...
 * NB: 02 04 05 06. --updates and --eval-batches shrink the number of batches
 * (lavapipe is slow), never their shape; 0 means the notebook's own count.
 * Rows are JSON lines; `allocated` is tfjs's buffer pool (free buffers
 * included): what the GPU really holds, since the pool never gives a buffer back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, loadModel, injectShareLoRA, Trainer, taskBatches, datasets, loadTokenizer, generate, type TaskData } from '../src/index.js';
import { frozenCopyBytes } from '../src/backend/webgpu/frozen.js';
import { flags } from '../src/backend/flags.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args.splice(i, 2)[1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
};
const UPDATES = opt('updates', 3), EVAL_BATCHES = opt('eval-batches', 2), RUNS = opt('runs', 2), DECODE_TOKENS = opt('decode-tokens', 0);
const notebooks = args.length ? args : ['02', '04', '05', '06'];
const cut = <T>(xs: T[], n: number): T[] => (n ? xs.slice(0, n) : xs);
const newTrainer = (...a: ConstructorParameters<typeof Trainer>): Trainer => new Trainer(...a);
await useBackend('webgpu');
const MiB = (x: number) => +(x / 2 ** 20).toFixed(1);
interface Pool { freeBuffers: Map<string, unknown[]>; usedBuffers: Map<string, unknown[]>; numFreeBuffers: number; numUsedBuffers: number }
let peakUsed = 0;
function row(nb: string, run: number, phase: string, t0: number): void {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
  const pool = (tf.backend() as unknown as { bufferManager?: Pool }).bufferManager;
  const sizes = pool ? new Set([...pool.freeBuffers.keys(), ...pool.usedBuffers.keys()]).size : null;
  console.log(JSON.stringify({
    nb, run, phase, s: +((performance.now() - t0) / 1000).toFixed(1),
    tensors: m.numTensors, tensorMiB: MiB(m.numBytes), inGpuMiB: MiB(m.numBytesInGPU ?? 0), peakInGpuMiB: MiB(peakUsed),
    allocatedMiB: MiB(m.numBytesAllocatedInGPU ?? 0), frozenMiB: MiB(frozenCopyBytes()),
    poolBuffers: pool ? pool.numFreeBuffers + pool.numUsedBuffers : null, poolSizes: sizes,
  }));
}
// the peak of live buffers within a phase: sampled at every buffer the pool hands out
const bm = (tf.backend() as unknown as { bufferManager?: { acquireBuffer: (...a: unknown[]) => unknown; numBytesUsed: number } }).bufferManager;
if (bm) {
  const acquire = bm.acquireBuffer.bind(bm);
  bm.acquireBuffer = (...a: unknown[]) => { const b = acquire(...a); peakUsed = Math.max(peakUsed, bm.numBytesUsed); return b; };
}

console.log(JSON.stringify({
  backend: tf.getBackend(), updates: UPDATES || 'full', evalBatches: EVAL_BATCHES || 'full', runs: RUNS,
  switches: { device: flags.webgpuDevice, splitK: flags.gemmSplitK, pretransposeMiB: flags.gemmPretransposeMiB, flash: flags.webgpuFlashAttention, lightClone: flags.lightClone, bindGroupCache: flags.webgpuBindGroupCache },
}));
const MODEL = 'sharelora-gpt2-deep';
const tok = loadTokenizer(MODEL);

/** 02's and 05's run: a fresh classifier per run, an adapter, one epoch, the validation split, the model dropped */
async function seqClsRuns(nb: string, train: TaskData, valB: ReturnType<typeof taskBatches>, adapterOptions: Parameters<typeof injectShareLoRA>[1], evalDuringFit: boolean): Promise<void> {
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    peakUsed = 0;
    const m = await loadModel(MODEL, { task: 'seq-cls', numLabels: 2, seed: run });
    const a = injectShareLoRA(m, { ...adapterOptions, seed: run });
    const trainer = newTrainer(m, a, { lr: 3e-3, schedule: 'linear', warmupRatio: 0.1, weightDecay: 0.01, seed: run });
    row(nb, run, 'load', t0);
    await trainer.fit({ train: cut(taskBatches(train, tok, { batchSize: 32, maxLength: 64, seed: run }), UPDATES), epochs: 1, ...(evalDuringFit ? { eval: valB, evalEvery: Math.max(1, UPDATES) } : {}) });
    row(nb, run, 'train', t0);
    await trainer.evaluate(valB);
    row(nb, run, 'eval', t0);
    trainer.dispose();
    m.dispose();
    row(nb, run, 'dropped', t0);
  }
}

async function nb02(): Promise<void> {
  const train = await datasets.spamAssassin({ split: 'train' });
  const val = await datasets.spamAssassin({ split: 'validation' });
  const valB = cut(taskBatches(val, tok, { batchSize: 64, maxLength: 64, shuffle: false }), EVAL_BATCHES);
  await seqClsRuns('02', train, valB, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'none' }, true);
}

async function nb04(): Promise<void> {
  // the model is loaded once per process; each run trains adapters on it (trainCell), here the largest cell, n=144, r=16
  const t0 = performance.now();
  const sets = await datasets.spamAssassin({ split: 'train', limit: 144 });
  const val = await datasets.spamAssassin({ split: 'validation', limit: 128 });
  const test = await datasets.spamAssassin({ split: 'test' });
  const model = await loadModel(MODEL, { task: 'seq-cls', numLabels: 2, seed: 0 });
  row('04', -1, 'load (once a process)', t0);
  const valB = taskBatches(val, tok, { batchSize: 64, maxLength: 64, shuffle: false });
  const testB = cut(taskBatches(test, tok, { batchSize: 64, maxLength: 64, shuffle: false }), EVAL_BATCHES);
  const trainEvalB = taskBatches(sets, tok, { batchSize: 64, maxLength: 64, shuffle: false });
  const updates = UPDATES || 20;
  for (let run = 0; run < RUNS; run++) {
    const t1 = performance.now();
    peakUsed = 0;
    const stream: ReturnType<typeof taskBatches> = [];
    for (let pass = 0; stream.length < updates; pass++) stream.push(...taskBatches(sets, tok, { batchSize: 16, maxLength: 64, seed: run * 1000 + pass }));
    stream.length = updates;
    const adapter = injectShareLoRA(model, { r: 16, alpha: 32, targets: ['q', 'v'], share: 'none', seed: run });
    const trainer = newTrainer(model, adapter, { lr: 3e-3, schedule: 'constant', warmupRatio: 0.1, weightDecay: 0.01, seed: run });
    row('04', run, 'adapter', t1);
    await trainer.fit({ train: stream, epochs: 1, shuffle: false, eval: valB, evalEvery: Math.min(4, updates) });
    row('04', run, 'train (+val every 4)', t1);
    await trainer.evaluate(trainEvalB);
    await trainer.evaluate(testB);
    row('04', run, 'eval', t1);
    trainer.dispose();
    adapter.unload();
    row('04', run, 'dropped (adapter)', t1);
  }
  model.dispose();
  row('04', -1, 'model dropped', t0);
}

async function nb05(): Promise<void> {
  // the largest configuration: all five linears, r = 32, LoRA
  const train = await datasets.spamAssassin({ split: 'train', limit: 16 * 32 });
  const val = await datasets.spamAssassin({ split: 'validation' });
  const valB = cut(taskBatches(val, tok, { batchSize: 64, maxLength: 64, shuffle: false }), EVAL_BATCHES);
  await seqClsRuns('05', train, valB, { r: 32, alpha: 64, targets: ['q', 'v', 'o', 'up', 'down'], share: 'none' }, false);
}

async function nb06(): Promise<void> {
  const FULL = { batch: 64, updates: 50, val: 512, test: 512, prompts: 128, maxNew: 24 };
  const train = await datasets.wordnetDefinitions({ split: 'train', limit: FULL.updates * FULL.batch });
  const val = await datasets.wordnetDefinitions({ split: 'validation', limit: FULL.val });
  const test = await datasets.wordnetDefinitions({ split: 'test', limit: FULL.test });
  const prefixIds = tok.template(false).prefix;
  const promptIds = (test.table.array('prompt') as string[]).slice(0, FULL.prompts).map((p) => [...prefixIds, ...tok.encode(p, { addSpecialTokens: false })]);
  const valB = cut(taskBatches(val, tok, { batchSize: 64, maxLength: 64, shuffle: false }), EVAL_BATCHES);
  const testB = cut(taskBatches(test, tok, { batchSize: 64, maxLength: 64, shuffle: false }), EVAL_BATCHES);
  console.log(JSON.stringify({ nb: '06', trainLengths: taskBatches(train, tok, { batchSize: 64, maxLength: 64, seed: 0 }).map((b) => b.inputIds[0]!.length) }));
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    peakUsed = 0;
    const m = await loadModel(MODEL);
    const adapter = injectShareLoRA(m, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'none', seed: run });
    const trainer = newTrainer(m, adapter, { lr: 1e-2, schedule: 'linear', warmupRatio: 0.1, weightDecay: 0.01, seed: run });
    row('06', run, 'load', t0);
    await trainer.fit({ train: cut(taskBatches(train, tok, { batchSize: 64, maxLength: 64, seed: run }), UPDATES), epochs: 1 });
    row('06', run, 'train', t0);
    await trainer.evaluate(valB);
    await trainer.evaluate(testB);
    row('06', run, 'eval', t0);
    await generate(m, promptIds, { maxNewTokens: DECODE_TOKENS || FULL.maxNew, eosTokenId: tok.eosId, batchSize: 128 });
    row('06', run, 'decode', t0);
    trainer.dispose();
    m.dispose();
    row('06', run, 'dropped', t0);
  }
}

const recipes: Record<string, () => Promise<void>> = { '02': nb02, '04': nb04, '05': nb05, '06': nb06 };
for (const nb of notebooks) {
  const r = recipes[nb];
  if (!r) throw new Error(`no recipe for notebook ${nb}; have ${Object.keys(recipes).join(', ')}`);
  await r();
}
