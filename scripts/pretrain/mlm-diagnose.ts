/**
 * Short masked-LM runs on the CPU, to see which recipe leaves the unigram
 * plateau (issue 20). The same model, batches (mlmBatch), AdamW, clipping,
 * schedule and held-out metric (mlmMetrics) as `pretrain-mlm.js train`,
 * which also applies the masked-LM head to the masked positions alone
 * (mlmBatch's headRows; the loss is the same number, checked here at step 0
 * against the full head), what makes a small model's step ~5× cheaper on wasm.
 *
 *   node dist/scripts/pretrain/mlm-diagnose.js --preset d64-l2 --batch 32 --block 64 --steps 1000 --lr 1e-3 --warmup 100 --json out.json
 *   node dist/scripts/pretrain/mlm-diagnose.js --preset d256-l12 --init .pretrain/init/mlm-from-gpt2-deep --steps 200 --lr 1e-4 ...
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend/index.js';
import { forwardForLoss } from '../../src/train/loss.js';
import { join } from 'node:path';
import { randomModel } from '../../src/models/init.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Roberta } from '../../src/models/roberta.js';
import { fullFineTune } from '../../src/adapters/full.js';
import { AdamW } from '../../src/train/adamw.js';
import { lrMultiplier, type ScheduleName } from '../../src/train/schedule.js';
import { readTokenData, type TokenData } from './data.js';
import { Rng } from '../../src/util/rng.js';
import { mlmBatch, mlmMetrics } from './cli.js';
import { modelConfig, need, parseFlags, preset, UsageError, type FlagSpec } from './run.js';

const FLAGS: FlagSpec = {
  data: { kind: 'string', help: 'folder written by prepare', default: '.pretrain/data' },
  preset: { kind: 'string', help: 'model shape', default: 'd64-l2' },
  batch: { kind: 'int', help: 'sequences per step', default: 32 },
  block: { kind: 'int', help: 'tokens per sequence', default: 64 },
  steps: { kind: 'int', help: 'optimizer updates (the schedule spans them)' },
  lr: { kind: 'number', help: 'peak learning rate', default: 1e-3 },
  warmup: { kind: 'int', help: 'warm-up updates', default: 100 },
  schedule: { kind: 'string', help: 'cosine, linear or constant', default: 'cosine' },
  beta2: { kind: 'number', help: 'Adam β2', default: 0.95 },
  'weight-decay': { kind: 'number', help: 'AdamW weight decay', default: 0.1 },
  clip: { kind: 'number', help: 'global gradient-norm clip, 0 for none', default: 1 },
  'mask-rate': { kind: 'number', help: 'share of tokens predicted in training batches', default: 0.15 },
  seed: { kind: 'int', help: 'initialisation and batch seed', default: 0 },
  init: { kind: 'string', help: 'start from this saved RobertaForMaskedLM folder (e.g. gpt2-to-roberta.js output) instead of random init; its shape must be --preset\'s' },
  'position-init': { kind: 'string', help: 'normal (HF) or sinusoidal (randomModel positionInit)', default: 'normal' },
  'log-every': { kind: 'int', help: 'mean training loss logged every N updates (eval-every must be a multiple)', default: 50 },
  'eval-every': { kind: 'int', help: 'held-out masked accuracy every N updates', default: 250 },
  'eval-tokens': { kind: 'int', help: 'held-out tokens scored (15% masking, fixed seed)', default: 16384 },
  'minutes': { kind: 'number', help: 'stop after this much wall-clock time', default: 5 },
  backend: { kind: 'string', help: 'backend', default: 'wasm' },
  json: { kind: 'string', help: 'write the curve and settings here' },
  synthetic: { kind: 'int', help: 'instead of the corpus, a seeded Markov chain over this many tokens (each followed by one of 4 successors): a language whose masked tokens are nearly determined by their neighbours, cheap to train on', default: 0 },
  'synthetic-peak': { kind: 'number', help: 'probability of each id\'s first successor (the others share the rest 50/30/20)', default: 0.5 },
};

/**
 * A stand-in for the prepared corpus: a first-order Markov chain over `V`
 * ids, each id followed by one of 4 fixed successors (probabilities `peak`
 * and the rest split 50/30/20: 0.5, 0.25, 0.15, 0.1 at peak 0.5). Context predicts a masked token well, its frequency
 * alone does not, so it tells a model that reads context from one that
 * does not, with a vocabulary small enough for the CPU.
 */
function syntheticData(V: number, seed: number, peak: number): TokenData {
  const rng = new Rng(seed + 77);
  const next = Array.from({ length: V }, () => Array.from({ length: 4 }, () => Math.floor(rng.next() * V)));
  const cdf = [peak, peak + 0.5 * (1 - peak), peak + 0.8 * (1 - peak), 1];
  const stream = (n: number) => {
    const out = new Uint16Array(n);
    let t = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      t = next[t]![cdf.findIndex((c) => u < c)]!;
      out[i] = t;
    }
    return out;
  };
  const train = stream(1_000_000), heldOut = stream(50_000);
  const unigram = new Array<number>(V + 1).fill(0);
  for (const t of train) unigram[t]!++;
  // ids 0..V-1 are the "BPE" ids and V the separator: merges = V - 256 gives mlmBatch's vocabulary V + 4 specials + <mask>
  return { dir: '(synthetic)', merges: V - 256, vocab: V + 1, sep: V, train, heldOut, heldOutDocs: [], unigram, stats: { synthetic: V } };
}

/** mean cross-entropy over the masked positions, the head applied to those rows only (mlmBatch's headRows) */
function sparseLoss(model: Roberta, b: ReturnType<typeof mlmBatch>): tf.Scalar {
  const f = forwardForLoss(model, b, tf.tensor2d(b.labels, undefined, 'int32'), true);
  return model.loss(f.logits, f.labels);
}

/**
 * A saved masked LM as the starting point. Its shape must be the preset's, so
 * that a run's preset names what was trained, and its vocabulary the data's,
 * or every id would index the wrong row.
 */
function initModel(dir: string, presetName: string, want: Record<string, unknown>, block: number): Roberta {
  if (process.argv.includes('--position-init')) throw new UsageError('mlm-diagnose: --position-init applies to random initialisation only; drop it or --init');
  const m = loadModelFromDir(dir, { task: 'masked-lm' });
  const c = m.config.raw as Record<string, unknown>;
  const fields = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'vocab_size'] as const;
  const bad = fields.find((k) => c[k] !== want[k]);
  const tooShort = (m.config.maxPositions as number) < block + 2;
  if (bad || tooShort) {
    m.dispose();
    if (bad) throw new UsageError(`mlm-diagnose: ${join(dir, 'config.json')}: field "${bad}" is ${JSON.stringify(c[bad])}, but --preset ${presetName} with this data expects ${JSON.stringify(want[bad])}`);
    throw new UsageError(`mlm-diagnose: ${join(dir, 'config.json')}: field "max_position_embeddings" is ${m.config.maxPositions}, but --block ${block} needs at least ${block + 2}`);
  }
  return m as Roberta;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), FLAGS, 'mlm-diagnose');
  const info = await useBackend(f.backend as string);
  const V = f.synthetic as number;
  if (V !== 0 && !(V >= 257 && V < 65535)) throw new UsageError(`mlm-diagnose: --synthetic must be 0 (the corpus) or a vocabulary in [257, 65535), got ${V}`);
  const peak = f['synthetic-peak'] as number;
  if (!(peak > 0 && peak < 1)) throw new UsageError(`mlm-diagnose: --synthetic-peak must be in (0, 1), got ${peak}`);
  const data = V ? syntheticData(V, f.seed as number, peak) : readTokenData(f.data as string);
  const [batch, block, steps, seed] = [f.batch as number, f.block as number, need<number>(f, 'steps', 'mlm-diagnose'), f.seed as number];
  const schedule = f.schedule as ScheduleName;
  if (!['cosine', 'linear', 'constant'].includes(schedule)) throw new UsageError(`mlm-diagnose: unknown --schedule ${schedule}`);
  const p = preset(f.preset as string);
  const shape = modelConfig('mlm', { ...p, positions: Math.max(p.positions, block) }, data);
  const model = f.init ? initModel(f.init as string, f.preset as string, shape, block) : randomModel(shape, { seed, task: 'masked-lm', positionInit: f['position-init'] as 'normal' | 'sinusoidal' }) as Roberta;
  const ft = fullFineTune(model);
  const params = ft.namedParameters();
  const opt = new AdamW({ betas: [0.9, f.beta2 as number], weightDecay: f['weight-decay'] as number });
  const rate = f['mask-rate'] as number, clip = f.clip as number;
  const logEvery = f['log-every'] as number;
  if (!(logEvery >= 1) || (f['eval-every'] as number) % logEvery) throw new UsageError(`mlm-diagnose: --eval-every (${f['eval-every']}) must be a multiple of --log-every (${logEvery}), which must be ≥ 1`);
  const evalAt = async () => {
    const m = await mlmMetrics(model, data, { block, batch: 16, maxTokens: f['eval-tokens'] as number });
    return { maskedAccuracy: m.maskedAccuracy, mlmPerplexity: m.mlmPerplexity, noContextAccuracy: m.noContextAccuracy, noContextPerplexity: m.noContextPerplexity };
  };
  // the cheap loss must be the model's own: the same batch through forward + maskedLmLoss
  {
    const b = mlmBatch(data, data.train, seed, 0, batch, block, rate);
    const [full, sparse] = tf.tidy(() => [model.loss(model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }).logits, tf.tensor2d(b.labels, undefined, 'int32')), sparseLoss(model, b)]);
    const [a, c] = [(await full!.data())[0]!, (await sparse!.data())[0]!];
    tf.dispose([full!, sparse!]);
    if (Math.abs(a - c) > 1e-4 * Math.abs(a)) throw new Error(`sparse loss ${c} differs from the model's loss ${a}`);
  }
  const curve: Array<{ step: number; loss: number; lr: number; maskedAccuracy?: number; mlmPerplexity?: number }> = [];
  // update 0: what the initialisation alone scores (for --init, the converted model untrained); not counted in --minutes
  const e0 = performance.now();
  const initial = { step: 0, ...(await evalAt()), evalSeconds: (performance.now() - e0) / 1000 };
  console.log(`update 0: ${JSON.stringify(initial)}`);
  const t0 = performance.now();
  let window: number[] = [];
  console.log(`${info.name}: ${f.preset} ${model.baseParameterCount().toLocaleString('en')} parameters; ${JSON.stringify(f)}`);
  let step = 0;
  for (; step < steps && (performance.now() - t0) / 60_000 < (f.minutes as number); step++) {
    const lr = (f.lr as number) * lrMultiplier(schedule, step, f.warmup as number, steps);
    const b = mlmBatch(data, data.train, seed, step, batch, block, rate);
    const { value, grads } = tf.variableGrads(() => sparseLoss(model, b), [...params.values()]);
    const byName = new Map([...params].map(([n, v]) => [n, grads[v.name]!]));
    const norm = Math.sqrt((await tf.tidy(() => tf.addN([...byName.values()].map((g) => tf.sum(tf.square(g))))).data())[0]!);
    const scale = clip > 0 && norm > clip ? clip / norm : 1;
    opt.apply(params, byName, { lr, gradScale: scale });
    window.push((await value.data())[0]!);
    tf.dispose([value, ...Object.values(grads)]);
    if ((step + 1) % logEvery === 0) {
      const point: (typeof curve)[number] = { step: step + 1, loss: window.reduce((a, v) => a + v, 0) / window.length, lr };
      window = [];
      if ((step + 1) % (f['eval-every'] as number) === 0) Object.assign(point, await evalAt());
      curve.push(point);
      console.log(`step ${point.step} loss ${point.loss.toFixed(3)} lr ${lr.toExponential(2)}${point.maskedAccuracy !== undefined ? ` acc ${point.maskedAccuracy.toFixed(3)}` : ''} ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  const final = curve.at(-1)?.step === step && curve.at(-1)!.maskedAccuracy !== undefined ? {} : await evalAt();
  const result = { settings: f, backend: info.name, updates: step, seconds: (performance.now() - t0) / 1000, initial, final: { ...curve.at(-1), ...final }, curve, command: `node dist/scripts/pretrain/mlm-diagnose.js ${process.argv.slice(2).join(' ')}` };
  console.log(JSON.stringify(result.final));
  if (f.json) writeFileSync(f.json as string, JSON.stringify(result, null, 1) + '\n');
}

try {
  await main();
} catch (e) {
  if (e instanceof UsageError) { console.error(e.message); process.exitCode = 2; } else throw e;
}
