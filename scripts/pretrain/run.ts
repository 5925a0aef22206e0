/**
 * What the causal-LM and masked-LM pretraining scripts share: command-line
 * flags, model presets, seeded batches, a training loop that stops itself
 * before a wall-clock budget and resumes exactly, held-out evaluation, the
 * exported Hugging Face folder, and the scaling sweep.
 *
 * Exact resume: a batch is a pure function of (seed, step), so a checkpoint
 * (Trainer.save: weights, AdamW moments, step, schedule) is all the state.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend/index.js';
import { randomModel } from '../../src/models/init.js';
import { loadModelFromDir } from '../../src/models/load.js';
import { saveModel } from '../../src/models/save.js';
import type { Model } from '../../src/models/types.js';
import { fullFineTune, type FullFineTune } from '../../src/adapters/full.js';
import { Trainer } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { hash32 } from '../../src/data/split.js';
import type { TokenData } from './data.js';
import type { TextTokenizer } from '../../src/data/tokenizer.js';

// ---------- flags ----------

export type FlagSpec = Record<string, { kind: 'string' | 'number' | 'int' | 'list'; help: string; default?: string | number }>;
export type Flags = Record<string, string | number | string[] | undefined>;

/** `--name value` pairs; an unknown flag, a missing value or a malformed number is an error naming it. */
export function parseFlags(argv: string[], spec: FlagSpec, what: string): Flags {
  const out: Flags = {};
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) out[k] = s.default;
  for (let i = 0; i < argv.length; i += 2) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new UsageError(`${what}: expected a --flag, got ${JSON.stringify(a)}`, spec);
    const name = a.slice(2);
    const s = spec[name];
    if (!s) throw new UsageError(`${what}: unknown flag --${name}`, spec);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${what}: --${name} needs a value`, spec);
    if (s.kind === 'string') out[name] = v;
    else if (s.kind === 'list') out[name] = v.split(',').filter(Boolean);
    else {
      const n = Number(v);
      if (!Number.isFinite(n) || (s.kind === 'int' && !Number.isSafeInteger(n))) throw new UsageError(`${what}: --${name} must be ${s.kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`, spec);
      out[name] = n;
    }
  }
  return out;
}

export class UsageError extends Error {
  constructor(message: string, spec?: FlagSpec) {
    super(spec ? `${message}\nflags:\n${Object.entries(spec).map(([k, s]) => `  --${k}  ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`).join('\n')}` : message);
    this.name = 'UsageError';
  }
}

export function need<T extends string | number>(f: Flags, name: string, what: string): T {
  if (f[name] === undefined) throw new UsageError(`${what}: --${name} is required`);
  return f[name] as T;
}

// ---------- models ----------

export type Kind = 'causal' | 'mlm';

export interface Preset { hidden: number; layers: number; heads: number; positions: number }

/** Named shapes for the sweep; the vocabulary comes from the prepared data (256 + merges + 1, RoBERTa + 4). */
export const PRESETS: Record<string, Preset> = {
  'd256-l6': { hidden: 256, layers: 6, heads: 8, positions: 256 },     // today's sharelora-gpt2-mini shape
  'd256-l12': { hidden: 256, layers: 12, heads: 8, positions: 256 },
  'd320-l8': { hidden: 320, layers: 8, heads: 8, positions: 256 },
  'd384-l6': { hidden: 384, layers: 6, heads: 6, positions: 256 },
  'd448-l4': { hidden: 448, layers: 4, heads: 7, positions: 256 },
  'd192-l8': { hidden: 192, layers: 8, heads: 6, positions: 256 },
  'd128-l4': { hidden: 128, layers: 4, heads: 4, positions: 128 },    // CPU diagnosis runs
  'd64-l2': { hidden: 64, layers: 2, heads: 2, positions: 128 },      // CPU diagnosis runs
  'd64-l6': { hidden: 64, layers: 6, heads: 2, positions: 128 },      // CPU diagnosis runs (depth)
  'tiny': { hidden: 16, layers: 2, heads: 2, positions: 64 },         // smoke tests only
};

export function preset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new UsageError(`unknown model preset "${name}"; choose one of ${Object.keys(PRESETS).join(', ')}`);
  return p;
}

/** config.json of a preset: GPT2LMHeadModel (tied head) or RobertaForMaskedLM (tied decoder). */
export function modelConfig(kind: Kind, p: Preset, data: Pick<TokenData, 'merges'>): Record<string, unknown> {
  const bpe = 256 + data.merges;
  if (kind === 'causal') {
    return {
      model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: bpe + 1, n_positions: p.positions, n_embd: p.hidden,
      n_layer: p.layers, n_head: p.heads, n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02,
      resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, scale_attn_weights: true, tie_word_embeddings: true,
      bos_token_id: bpe, eos_token_id: bpe, pad_token_id: null,
    };
  }
  return {
    model_type: 'roberta', architectures: ['RobertaForMaskedLM'], vocab_size: bpe + 4 + 1, hidden_size: p.hidden, num_hidden_layers: p.layers,
    num_attention_heads: p.heads, intermediate_size: 4 * p.hidden, hidden_act: 'gelu', max_position_embeddings: p.positions + 2,
    type_vocab_size: 1, layer_norm_eps: 1e-5, initializer_range: 0.02, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
    pad_token_id: 1, bos_token_id: 0, eos_token_id: 2, tie_word_embeddings: true, position_embedding_type: 'absolute',
  };
}

/** parameters of a config without building it (the sweep reports sizes of shapes it may not run) */
export function parameterCount(kind: Kind, c: Record<string, unknown>): number {
  const m = randomModel(c, { seed: 0, task: kind === 'causal' ? 'causal-lm' : 'masked-lm' });
  const n = m.baseParameterCount();
  m.dispose();
  return n;
}

// ---------- batches ----------

/** the seed of batch `step`: batches are a function of (seed, step), so a resumed run draws the same ones */
export function batchSeed(seed: number, step: number): number {
  return hash32(`batch ${step}`, seed);
}

/** causal LM: `batch` windows of `block` tokens at seeded offsets of the train stream; labels = ids (the model shifts them) */
export function causalBatch(data: TokenData, seed: number, step: number, batch: number, block: number): { inputIds: number[][]; labels: number[][] } {
  const rng = new Rng(batchSeed(seed, step));
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const at = Math.floor(rng.next() * (data.train.length - block));
    rows.push(Array.from(data.train.subarray(at, at + block)));
  }
  return { inputIds: rows, labels: rows };
}

// ---------- evaluation ----------

export interface BitsPerByte {
  bitsPerByte: number;
  perplexity: number;
  tokens: number;
  bytes: number;
  documents: number;
  /** the prefix of the held-out stream that was scored, when --max-eval-tokens bounded it */
  bounded: boolean;
  perSource: Record<string, { bitsPerByte: number; bytes: number; tokens: number }>;
}

/**
 * Bits per byte of the held-out text: every token of every held-out document
 * is predicted once (windows of `block` overlap by one token, each window's
 * first token is context only; the separator before a document is context,
 * the one after it is not scored), and the total NLL in bits is divided by
 * the documents' UTF-8 bytes. Tokenizer-independent, unlike perplexity.
 * `maxTokens` scores the whole documents that fit in that prefix.
 */
export async function causalBitsPerByte(model: Model, data: TokenData, opts: { block: number; batch: number; maxTokens?: number; log?: (s: string) => void }): Promise<BitsPerByte> {
  const docs = [] as TokenData['heldOutDocs'];
  for (const d of data.heldOutDocs) {
    if (opts.maxTokens !== undefined && d.start + d.tokens + 1 > opts.maxTokens) break;
    docs.push(d);
  }
  if (!docs.length) throw new Error(`no whole held-out document fits in ${opts.maxTokens} tokens`);
  const stream = data.heldOut.subarray(0, docs.at(-1)!.start + docs.at(-1)!.tokens);
  // nll[i] = -log p(stream[i] | stream[<i]) for i >= 1
  const nll = new Float64Array(stream.length);
  const T = opts.block, step = T - 1;
  const starts: number[] = [];
  for (let s = 0; s + 1 < stream.length; s += step) starts.push(s);
  const t0 = performance.now();
  for (let i = 0; i < starts.length; i += opts.batch) {
    const group = starts.slice(i, i + opts.batch);
    const len = Math.min(T, ...group.map((s) => stream.length - s));
    // equal-length rows: the ragged last window goes into a batch of its own
    const full = group.filter((s) => stream.length - s >= len);
    const rest = group.filter((s) => stream.length - s < len);
    for (const g of [full, ...rest.map((s) => [s])]) {
      if (!g.length) continue;
      const L = Math.min(T, ...g.map((s) => stream.length - s));
      const rows = g.map((s) => Array.from(stream.subarray(s, s + L)));
      const picked = tf.tidy(() => {
        const { logits } = model.forward({ inputIds: rows });
        const logp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [g.length, L - 1, logits.shape[2]!]));
        const next = tf.tensor2d(rows.map((r) => r.slice(1)), [g.length, L - 1], 'int32');
        return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(next, logits.shape[2]!)), -1));
      });
      const v = await picked.data();
      picked.dispose();
      g.forEach((s, r) => { for (let j = 1; j < L; j++) nll[s + j] = v[r * (L - 1) + j - 1]!; });
    }
    if (opts.log && (i / opts.batch) % 50 === 0) opts.log(`  eval ${Math.min(i + opts.batch, starts.length)}/${starts.length} windows, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const perSource: BitsPerByte['perSource'] = {};
  let bits = 0, bytes = 0, tokens = 0;
  for (const d of docs) {
    let b = 0;
    for (let j = d.start; j < d.start + d.tokens; j++) b += nll[j]! / Math.LN2;
    const s = (perSource[d.source] ??= { bitsPerByte: 0, bytes: 0, tokens: 0 });
    s.bitsPerByte += b; s.bytes += d.bytes; s.tokens += d.tokens;
    bits += b; bytes += d.bytes; tokens += d.tokens;
  }
  for (const s of Object.values(perSource)) s.bitsPerByte /= s.bytes;
  return { bitsPerByte: bits / bytes, perplexity: Math.exp((bits * Math.LN2) / tokens), tokens, bytes, documents: docs.length, bounded: docs.length < data.heldOutDocs.length, perSource };
}

/** the add-one unigram model's bits per byte on the same documents: the floor any trained model must clear */
export function unigramBitsPerByte(data: TokenData, documents: number): number {
  const total = data.unigram.reduce((a, b) => a + b, 0) + data.unigram.length;
  let bits = 0, bytes = 0;
  for (const d of data.heldOutDocs.slice(0, documents)) {
    for (let j = d.start; j < d.start + d.tokens; j++) bits -= Math.log2((data.unigram[data.heldOut[j]!]! + 1) / total);
    bytes += d.bytes;
  }
  return bits / bytes;
}

// ---------- the training run ----------

export interface RunSettings {
  kind: Kind;
  preset: string;
  config: Record<string, unknown>;
  batch: number;
  block: number;
  lr: number;
  warmup: number;
  totalSteps: number;
  /** when set, the cosine schedule spans this many seconds of training (over all runs) instead of totalSteps updates: the step count is re-estimated from the measured step time before every update, so a run sized by the clock ends with its decay finished */
  trainSeconds?: number;
  /** a saved model folder whose weights start the run (fresh optimizer state) instead of random initialisation */
  init?: string;
  /** the exported model's name (README title) */
  name?: string;
  seed: number;
  weightDecay: number;
  /** Adam's β2 (absent: 0.95, the causal recipe) */
  beta2?: number;
  /** global gradient-norm clip, 0 for none (absent: 1) */
  clip?: number;
  /** masked LM only: the share of tokens predicted in training batches (absent: 0.15); evaluation always masks 15% */
  maskRate?: number;
  /** the position table's initialisation (randomModel positionInit; absent: normal) */
  positionInit?: 'sinusoidal';
  /** the data folder's stats at the first run, so a later run on other data is refused */
  dataStats: { merges: number; trainTokens: number; heldOutTokens: number; seed: number };
  command: string;
}

export interface RunState { settings: RunSettings; seconds: number; runs: Array<{ started: string; backend: string; device: string; fromStep: number; toStep: number; seconds: number; stopped: string }> }

export interface Hooks {
  /** a training batch for optimizer update `step` (0-based) */
  batch(step: number): { inputIds: number[][]; labels: number[][]; attentionMask?: number[][] };
  /** held-out metrics of the finished model */
  evaluate(model: Model, log: (s: string) => void): Promise<Record<string, unknown>>;
  /** tokenizer written next to the exported model */
  tokenizer(): TextTokenizer;
  /** files beyond config/weights/tokenizer for the exported folder (e.g. the embedded test's held-out tokens) */
  extraFiles?(dir: string): void;
  /** the README's description of the model, the metrics table rows */
  describe(settings: RunSettings, metrics: Record<string, unknown>): { title: string; body: string };
}

const STATE = 'run.json';
const CKPT = 'checkpoint';

function createModel(s: RunSettings): Model {
  if (s.init) return loadModelFromDir(s.init, { task: s.kind === 'causal' ? 'causal-lm' : 'masked-lm' });
  return randomModel(s.config, { seed: s.seed, task: s.kind === 'causal' ? 'causal-lm' : 'masked-lm', ...(s.positionInit ? { positionInit: s.positionInit } : {}) });
}

export interface TrainArgs {
  runDir: string;
  outDir: string;
  budgetSeconds: number;
  backend: string;
  /** fresh runs only */
  settings?: RunSettings;
  log?: (s: string) => void;
  /** stop after this many updates in this process (tests) */
  maxStepsThisRun?: number;
  saveEverySeconds?: number;
  /** where a stopped run, and every periodic save, writes the current weights as a float16 Hugging Face folder (no evaluation), so a lost checkpoint can restart from it with settings.init */
  snapshotDir?: string;
}

/**
 * Train until totalSteps or until the budget would run out, whichever comes
 * first. A stopped run saves a checkpoint and returns 'stopped'; running the
 * same command again continues exactly. A finished run evaluates, exports the
 * Hugging Face folder to outDir and returns 'done'.
 */
export async function trainRun(a: TrainArgs, hooks: Hooks): Promise<'stopped' | 'done'> {
  const t0 = performance.now();
  const log = a.log ?? ((s: string) => console.log(s));
  const elapsed = () => (performance.now() - t0) / 1000;
  const info = await useBackend(a.backend);
  mkdirSync(a.runDir, { recursive: true });
  const stateFile = join(a.runDir, STATE);
  let state: RunState;
  if (existsSync(stateFile)) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as RunState;
    if (a.settings && JSON.stringify({ ...a.settings, command: '' }) !== JSON.stringify({ ...state.settings, command: '' })) {
      throw new UsageError(`${stateFile}: this run was started with other settings (${JSON.stringify(state.settings)}); resume it with the same flags, or use a new --run folder`);
    }
  } else {
    if (!a.settings) throw new UsageError(`${a.runDir}: no run to resume (no ${STATE})`);
    state = { settings: a.settings, seconds: 0, runs: [] };
  }
  const s = state.settings;
  const model = createModel(s);
  const ft: FullFineTune = fullFineTune(model);
  const trainerOpts = { lr: s.lr, betas: [0.9, s.beta2 ?? 0.95] as [number, number], weightDecay: s.weightDecay, maxGradNorm: s.clip ?? 1, schedule: 'cosine' as const, warmupSteps: s.warmup, totalSteps: s.totalSteps, seed: s.seed };
  const resumed = existsSync(join(a.runDir, CKPT)) || existsSync(join(a.runDir, `${CKPT}.prev`));
  const trainer = resumed ? await Trainer.resume(join(a.runDir, CKPT), model, { trainable: ft }) : new Trainer(model, ft, trainerOpts);
  const fromStep = trainer.updates;
  log(`${info.name} (${info.device}): ${s.kind} ${s.preset}, ${model.baseParameterCount().toLocaleString('en')} parameters, ${resumed ? `resuming at step ${fromStep}` : 'fresh'} of ${s.totalSteps}; budget ${a.budgetSeconds} s`);
  let stopped = 'finished';
  // until the first save is timed: a fixed cost plus params, AdamW m and v (12 bytes a parameter) at 100 MB/s
  let stepSeconds = 0, saveSeconds = 2 + (12 * model.baseParameterCount()) / 1e8, lastSave = elapsed();
  // trained seconds over all runs: what was saved, plus this run's time since its last save
  const trained = () => state.seconds + elapsed() - lastSave;
  const timed = s.trainSeconds !== undefined;
  const save = async () => {
    const ts = performance.now();
    await trainer.save(join(a.runDir, CKPT));
    saveSeconds = Math.max(saveSeconds, (performance.now() - ts) / 1000);
    state.seconds += elapsed() - lastSave;
    lastSave = elapsed();
    writeFileSync(stateFile, JSON.stringify(state, null, 1) + '\n');
  };
  // the float16 folder a later call can bring back (the checkpoint, 12 bytes a parameter, cannot come back through $OUT):
  // written at every periodic save too, so a run whose machine goes back mid-schedule still leaves its last weights
  const snapshot = async () => {
    if (!a.snapshotDir) return;
    mkdirSync(a.snapshotDir, { recursive: true });
    await saveModel(model, a.snapshotDir, { dtype: 'F16' });
    log(`snapshot of step ${trainer.updates} in ${a.snapshotDir}`);
  };
  let interrupted = false;
  const onSignal = () => { interrupted = true; };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const run = { started: new Date().toISOString(), backend: info.name, device: info.device, fromStep, toStep: fromStep, seconds: 0, stopped: '' };
  state.runs.push(run);
  // step replay (src/train/step-replay.ts): one command buffer a step once the step is recorded; fit() does this itself
  trainer.startReplay();
  try {
    // never below the warm-up: the rate inside the warm-up does not depend on the total, and a checkpoint whose total
    // is shorter than its warm-up is one Trainer.resume refuses (a clock-sized run shorter than its warm-up did that)
    const target = () => (timed ? Math.max(trainer.updates + 1, s.warmup, Math.round(trainer.updates + (s.trainSeconds! - trained()) / Math.max(stepSeconds, 1e-3))) : s.totalSteps);
    if (timed && trainer.updates > 0 && trained() >= s.trainSeconds!) trainer.totalSteps = trainer.updates;
    while (timed ? trained() < s.trainSeconds! : trainer.updates < s.totalSteps) {
      // leave room for the save (and, if this is the last step, the evaluation and export: estimated as two saves)
      const reserve = 1.5 * saveSeconds + 2 * stepSeconds + 5;
      if (elapsed() + reserve > a.budgetSeconds) { stopped = `budget (${a.budgetSeconds} s)`; break; }
      if (interrupted) { stopped = 'signal'; break; }
      if (a.maxStepsThisRun !== undefined && trainer.updates - fromStep >= a.maxStepsThisRun) { stopped = 'max steps this run'; break; }
      if (timed) trainer.totalSteps = stepSeconds === 0 ? Math.max(trainer.totalSteps ?? 0, s.totalSteps) : target();
      const ts = performance.now();
      const loss = await trainer.step(hooks.batch(trainer.updates));
      const dt = (performance.now() - ts) / 1000;
      stepSeconds = stepSeconds === 0 ? dt : 0.9 * stepSeconds + 0.1 * dt;
      if (trainer.updates % 50 === 0 || trainer.updates === s.totalSteps) log(`step ${trainer.updates}/${trainer.totalSteps} loss ${loss.toFixed(4)} lr ${trainer.records.at(-1)!.lr.toExponential(2)} ${(stepSeconds * 1000).toFixed(0)} ms/step ${elapsed().toFixed(0)} s`);
      if (a.saveEverySeconds !== undefined && elapsed() - lastSave > a.saveEverySeconds && (timed || trainer.updates < s.totalSteps)) {
        await save();
        await snapshot();
      }
    }
    // a clock-sized run that ran out of time has finished its decay: the schedule ends here
    if (timed && trained() >= s.trainSeconds!) trainer.totalSteps = trainer.updates;
    run.toStep = trainer.updates;
    run.stopped = stopped;
    run.seconds = elapsed();
    await save();
  } finally {
    trainer.endReplay();
    if (trainer.lastReplay) log(`step replay: ${trainer.lastReplay.replayed} of ${trainer.lastReplay.steps} steps replayed${Object.keys(trainer.lastReplay.refused).length ? `; refused: ${JSON.stringify(trainer.lastReplay.refused)}` : ''}`);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  const finished = timed ? trainer.totalSteps === trainer.updates : trainer.updates >= s.totalSteps;
  if (!finished) {
    await snapshot();
    log(`stopped at step ${trainer.updates}/${trainer.totalSteps} (${stopped}) after ${elapsed().toFixed(0)} s; checkpoint in ${join(a.runDir, CKPT)}; run the same command again to continue`);
    trainer.dispose();
    model.dispose();
    return 'stopped';
  }
  ft.freeze();
  const metrics = await hooks.evaluate(model, log);
  await exportModel(model, a.outDir, state, trainer, metrics, hooks);
  log(`done: ${JSON.stringify(metrics)}; model in ${a.outDir}`);
  trainer.dispose();
  model.dispose();
  return 'done';
}

/** fp16 must stay under this so the model ships in data/ */
export const MAX_MODEL_BYTES = 30_000_000;

async function exportModel(model: Model, dir: string, state: RunState, trainer: Trainer, metrics: Record<string, unknown>, hooks: Hooks): Promise<void> {
  const s = state.settings;
  const bytes = 2 * model.baseParameterCount();
  if (bytes > MAX_MODEL_BYTES) throw new Error(`the model is ${bytes} bytes in float16, over the ${MAX_MODEL_BYTES}-byte limit for data/`);
  // replace a previous export, never a folder of something else (--out data by mistake)
  if (existsSync(dir) && readdirSync(dir).length && !existsSync(join(dir, 'config.json'))) throw new UsageError(`${dir}: exists and is not a model folder (no config.json); not writing the model there`);
  mkdirSync(dir, { recursive: true });
  await saveModel(model, dir, { dtype: 'F16' });
  const tok = hooks.tokenizer();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 2) + '\n');
  hooks.extraFiles?.(dir);
  const tokensPerStep = s.batch * s.block;
  // a run continued from a shipped model (--init) says what that model had seen, so the card can give the total
  const before = s.init && existsSync(join(s.init, 'training_stats.json'))
    ? JSON.parse(readFileSync(join(s.init, 'training_stats.json'), 'utf8')) as SavedStats
    : undefined;
  // every earlier stage of a continued model, oldest first, so its card can give the whole recipe
  const lineage = before ? lineageOf(before) : undefined;
  // what the starting model had seen over all its runs (a continued model's own tokensInAll), then this run's
  const beforeAll = before ? before.tokensInAll ?? before.tokensSeen : 0;
  const stats = {
    kind: s.kind, preset: s.preset, parameters: model.baseParameterCount(), steps: trainer.updates, batch: s.batch, block: s.block,
    tokensSeen: trainer.updates * tokensPerStep, epochs: (trainer.updates * tokensPerStep) / s.dataStats.trainTokens,
    trainSeconds: Math.round(state.seconds), runs: state.runs, lr: s.lr, warmup: s.warmup, weightDecay: s.weightDecay,
    beta2: s.beta2 ?? 0.95, clip: s.clip ?? 1, positionInit: s.positionInit ?? 'normal', ...(s.kind === 'mlm' ? { maskRate: s.maskRate ?? 0.15 } : {}), finalTrainLoss: trainer.records.at(-1)?.loss, data: s.dataStats, metrics, command: s.command,
    ...(s.init ? { continuedFrom: { dir: s.init, steps: before?.steps ?? null, tokensSeen: before?.tokensSeen ?? null, trainSeconds: before?.trainSeconds ?? null } } : {}),
    ...(before ? { tokensInAll: beforeAll + trainer.updates * tokensPerStep, lineage } : {}),
  };
  writeFileSync(join(dir, 'training_stats.json'), JSON.stringify(stats, null, 1) + '\n');
  const { title, body } = hooks.describe(s, metrics);
  const fileMB = (statSync(join(dir, 'model.safetensors')).size / 1e6).toFixed(1);
  const devices = [...new Set(state.runs.map((r) => `${r.backend} (${r.device})`))].join(', ');
  writeFileSync(join(dir, 'README.md'), `# ${title}

${body}

A standard Hugging Face folder: \`config.json\`, \`model.safetensors\` (float16, ${fileMB} MB), \`tokenizer.json\`.

| | |
|---|---|
| corpus | \`pretrainingCorpus()\` (src/data/pretraining.ts, README there): ${s.dataStats.trainTokens.toLocaleString('en')} training tokens, none from a split any notebook evaluates on |
| model | ${s.preset}: ${stats.parameters.toLocaleString('en')} parameters |
| training | ${stats.steps} AdamW steps (lr ${s.lr}, betas 0.9/${s.beta2 ?? 0.95}, weight decay ${s.weightDecay}, cosine, ${s.warmup} warm-up steps, clip ${s.clip ?? 1}${s.maskRate !== undefined ? `, masking ${s.maskRate}` : ''}${s.positionInit ? `, ${s.positionInit} position init` : ''}), batch ${s.batch} × ${s.block} tokens: **${stats.tokensSeen.toLocaleString('en')} tokens seen** (${stats.epochs.toFixed(2)} epochs)${before ? `, continuing \`${s.init}\` (its last run ${before.steps} steps, ${before.tokensSeen.toLocaleString('en')} tokens, ${before.trainSeconds} s; ${beforeAll.toLocaleString('en')} tokens in all before this run): **${(beforeAll + stats.tokensSeen).toLocaleString('en')} tokens in all**` : s.init ? `, starting from \`${s.init}\`` : ''} |
| time | **${stats.trainSeconds} s** of training in ${state.runs.length} run(s) on ${devices} |
${Object.entries(metrics).filter(([, v]) => typeof v === 'number').map(([k, v]) => `| ${k} | ${(v as number).toPrecision(4)} |`).join('\n')}

\`training_stats.json\` holds every number above and each run's steps and wall time.

Reproduce (the corpus, its held-out cut and every batch are seeded${lineage ? '; each stage continues the model the stage before it saved, at the path its --init names' : ''}):

\`\`\`
npm run build
${lineage ? reproduceStages(lineage, s.command) : s.command}
\`\`\`
`);
}

/** what training_stats.json holds that a continuation reads back */
interface SavedStats { steps: number; tokensSeen: number; trainSeconds: number; tokensInAll?: number; command?: string; metrics?: Record<string, unknown>; continuedFrom?: { dir: string }; lineage?: Stage[] }

/** one training run of a model's history */
export interface Stage { command: string; steps: number; tokensSeen: number; trainSeconds: number; init?: string; metrics: Record<string, number> }

/** the stages that made a saved model, oldest first: its own recorded lineage, then the model's own run */
export function lineageOf(st: SavedStats): Stage[] {
  const lines = (st.command ?? '').split('\n').filter((l) => l.trim());
  const numbers = Object.fromEntries(Object.entries(st.metrics ?? {}).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
  const own: Stage = { command: lines.at(-1) ?? '(not recorded)', steps: st.steps, tokensSeen: st.tokensSeen, trainSeconds: st.trainSeconds, ...(st.continuedFrom ? { init: st.continuedFrom.dir } : {}), metrics: numbers };
  return [...(st.lineage ?? []), own];
}

/** the card's reproduce block: the data preparation, every earlier stage's training command, then this run's */
export function reproduceStages(lineage: Stage[], command: string): string {
  const lines = command.split('\n');
  const head = lines.length > 1 ? lines.slice(0, -1) : [];
  const first = lineage[0]!;
  const out = [...head];
  if (first.init) out.push(`# stage 1 continued ${first.init}, whose earlier stages were not recorded`);
  lineage.forEach((g, i) => {
    const score = Object.entries(g.metrics).filter(([k]) => /BitsPerByte$|maskedAccuracy$/.test(k) && !/^unigram/.test(k)).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
    out.push(`# stage ${i + 1}: ${g.steps} updates, ${g.tokensSeen.toLocaleString('en')} tokens, ${g.trainSeconds} s${score ? `; ${score}` : ''}`, g.command);
  });
  out.push(`# stage ${lineage.length + 1} (this model)`, lines.at(-1)!);
  return out.join('\n');
}

// ---------- the sweep ----------

export interface SweepEntry { preset: string; parameters: number; fp16MB: number; steps: number; tokens: number; msPerStep: number; seconds: number; metrics: Record<string, unknown> }

/**
 * Train each preset for `minutes` from scratch (cosine schedule sized from
 * the first 10 steps' speed), evaluate, and append to one JSON file. A preset
 * already in the file is skipped, so a sweep cut by the 10-minute limit
 * continues where it stopped.
 */
export async function sweep(o: { kind: Kind; presets: string[]; minutes: number; out: string; backend: string; data: TokenData; batch: number; block: number; lr: number; seed: number; command: string },
  hooks: Pick<Hooks, 'evaluate'> & { batch(step: number, batch: number, block: number): { inputIds: number[][]; labels: number[][] } }, log = (s: string) => console.log(s)): Promise<SweepEntry[]> {
  const info = await useBackend(o.backend);
  const file = existsSync(o.out) ? JSON.parse(readFileSync(o.out, 'utf8')) as { entries: SweepEntry[] } : { entries: [] as SweepEntry[] };
  for (const name of o.presets) {
    if (file.entries.some((e) => e.preset === name)) { log(`${name}: already in ${o.out}, skipped`); continue; }
    const config = modelConfig(o.kind, { ...preset(name), positions: Math.max(preset(name).positions, o.block) }, o.data);
    const build = () => {
      const model = randomModel(config, { seed: o.seed, task: o.kind === 'causal' ? 'causal-lm' : 'masked-lm' });
      return { model, ft: fullFineTune(model) };
    };
    const settings = { lr: o.lr, betas: [0.9, 0.95] as [number, number], weightDecay: 0.1, maxGradNorm: 1 };
    // ten timed steps on a throwaway copy size the schedule, since a Trainer's options are fixed once made
    const probe = build();
    const timer = new Trainer(probe.model, probe.ft, { ...settings, schedule: 'constant' });
    const tp = performance.now();
    for (let i = 0; i < 10; i++) await timer.step(hooks.batch(timer.updates, o.batch, o.block));
    const per = (performance.now() - tp) / 10 / 1000;
    timer.dispose();
    probe.model.dispose();
    const { model, ft } = build();
    const totalSteps = Math.max(20, Math.floor((o.minutes * 60) / per));
    const trainer = new Trainer(model, ft, { ...settings, schedule: 'cosine', warmupSteps: Math.max(10, Math.round(totalSteps * 0.05)), totalSteps });
    const t0 = performance.now();
    while (trainer.updates < totalSteps && (performance.now() - t0) / 1000 < o.minutes * 60) await trainer.step(hooks.batch(trainer.updates, o.batch, o.block));
    const seconds = (performance.now() - t0) / 1000;
    ft.freeze();
    const metrics = await hooks.evaluate(model, log);
    const entry: SweepEntry = {
      preset: name, parameters: model.baseParameterCount(), fp16MB: (2 * model.baseParameterCount()) / 1e6, steps: trainer.updates,
      tokens: trainer.updates * o.batch * o.block, msPerStep: (1000 * seconds) / trainer.updates, seconds, metrics,
    };
    file.entries.push(entry);
    writeFileSync(o.out, JSON.stringify({ kind: o.kind, backend: info.name, device: info.device, minutes: o.minutes, batch: o.batch, block: o.block, lr: o.lr, command: o.command, entries: file.entries }, null, 1) + '\n');
    log(`${name}: ${JSON.stringify(entry)}`);
    trainer.dispose();
    model.dispose();
  }
  return file.entries;
}
