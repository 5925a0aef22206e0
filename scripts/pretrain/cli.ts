/**
 * The command line of scripts/pretrain-causal.ts and scripts/pretrain-mlm.ts:
 *   prepare  tokenise the pretraining corpus (here: needs the npm data packages)
 *   train    train or continue a run within a wall-clock budget; exports the model when finished
 *   eval     held-out metrics of a saved model (bits per byte, perplexity; MLM accuracy)
 *   eval-text  bits per byte of a causal model on text files from outside the corpus
 *   sweep    several presets for N minutes each, one JSON of results
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend/index.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import { collateMaskedLM } from '../../src/data/collate.js';
import { PRETRAINING_SOURCES, type PretrainingSource } from '../../src/data/pretraining.js';
import { causalTokenizer, DEFAULT_MERGES, MLM_SHIFT, mlmTokenizer, prepare, readTokenData, textAsHeldOut, type TokenData } from './data.js';
import { loadTokenizer } from '../../src/data/load-tokenizer.js';
import {
  batchSeed, causalBatch, causalBitsPerByte, modelConfig, need, parameterCount, parseFlags, preset, PRESETS, sweep, trainRun, unigramBitsPerByte,
  UsageError, type FlagSpec, type Flags, type Hooks, type Kind, type RunSettings,
} from './run.js';
import { Rng } from '../../src/util/rng.js';

const SCRIPT: Record<Kind, string> = { causal: 'dist/scripts/pretrain-causal.js', mlm: 'dist/scripts/pretrain-mlm.js' };
const BOS = 0, PAD = 1, EOS = 2, UNK = 3;

/** the shared token stream in the encoder's ids: BPE ids + 4, the document separator becomes </s> */
function toMlm(data: TokenData, ids: ArrayLike<number>): number[] {
  return Array.from(ids, (t) => (t === data.sep ? EOS : t + MLM_SHIFT));
}

/** the training unigram counts in the encoder's ids (specials and <mask> 0; the separator, which is </s>, left out) */
export function mlmUnigram(data: TokenData): number[] {
  const counts = new Array<number>(256 + data.merges + MLM_SHIFT + 1).fill(0);
  data.unigram.forEach((c, t) => { if (t !== data.sep) counts[t + MLM_SHIFT] = c; });
  return counts;
}

/** `batch` windows of block-2 tokens framed by <s> … </s>, masked with the batch's seed */
export function mlmBatch(data: TokenData, stream: Uint16Array, seed: number, step: number, batch: number, block: number, maskRate = 0.15) {
  const rng = new Rng(batchSeed(seed, step));
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const at = Math.floor(rng.next() * (stream.length - (block - 2)));
    rows.push([BOS, ...toMlm(data, stream.subarray(at, at + block - 2)), EOS]);
  }
  const maskId = 256 + data.merges + MLM_SHIFT;
  // the head on the masked rows only (headRows): bench/NOTES.md entry 26
  const b = collateMaskedLM(rows, { maskId, vocabSize: maskId + 1, specialIds: [BOS, PAD, EOS, UNK], padId: PAD, seed: batchSeed(seed + 1, step), probability: maskRate, headRows: true });
  return { inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels as number[][], ...(b.headRows ? { headRows: b.headRows as Int32Array } : {}) };
}

/** the held-out windows of mlmMetrics, masked (15%) with a fixed seed so every model sees the same masks */
function* heldOutMaskedBatches(data: TokenData, opts: { block: number; batch: number; maxTokens?: number }) {
  const span = opts.block - 2;
  const limit = Math.min(data.heldOut.length, opts.maxTokens ?? Infinity);
  const maskId = 256 + data.merges + MLM_SHIFT;
  for (let at = 0; at + span <= limit; at += span * opts.batch) {
    const rows: number[][] = [];
    for (let k = 0; k < opts.batch && at + (k + 1) * span <= limit; k++) rows.push([BOS, ...toMlm(data, data.heldOut.subarray(at + k * span, at + (k + 1) * span)), EOS]);
    const b = collateMaskedLM(rows, { maskId, vocabSize: maskId + 1, specialIds: [BOS, PAD, EOS, UNK], padId: PAD, seed: 1_000_003 + at });
    yield { ...b, labels: b.labels as number[][], windows: rows.length, maskId };
  }
}

/** masked-token accuracy and MLM perplexity on held-out windows, masked with a fixed seed so every model sees the same masks */
export async function mlmMetrics(model: Model, data: TokenData, opts: { block: number; batch: number; maxTokens?: number; log?: (s: string) => void }): Promise<Record<string, number>> {
  let nll = 0, correct = 0, n = 0, windows = 0;
  for (const b of heldOutMaskedBatches(data, opts)) {
    const out = tf.tidy(() => {
      const { logits } = model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask });
      const y = tf.tensor2d(b.labels, undefined, 'int32');
      const valid = tf.cast(tf.notEqual(y, -100), 'float32');
      const safe = tf.mul(y, tf.cast(valid, 'int32'));
      const logp = tf.logSoftmax(logits);
      const picked = tf.sum(tf.mul(logp, tf.oneHot(safe, logits.shape[2]!)), -1);
      const hit = tf.cast(tf.equal(tf.argMax(logits, -1), safe), 'float32');
      return tf.stack([tf.neg(tf.sum(tf.mul(picked, valid))), tf.sum(tf.mul(hit, valid)), tf.sum(valid)]);
    });
    const [a, c, k] = await out.data();
    out.dispose();
    nll += a!; correct += c!; n += k!; windows += b.windows;
  }
  return { mlmPerplexity: Math.exp(nll / n), maskedAccuracy: correct / n, maskedTokens: n, heldOutWindows: windows, ...mlmNoContextBaseline(data, opts) };
}

/**
 * The best a masked LM can do without reading any other position, on the
 * held-out masks of mlmMetrics: at <mask> the training unigram (add-one); at
 * a visible token x, which is the label itself (kept, 10%) or a uniform
 * random draw over a unigram-distributed label (10%), the Bayes mixture
 * q(y | x) = (p(x)·[y = x] + p(y)/D) / (p(x) + 1/D) over the D drawable ids.
 * A run whose loss sits at this baseline has learned to copy its input and
 * the word frequencies, nothing from context: the "unigram plateau".
 */
export function mlmNoContextBaseline(data: TokenData, opts: { block: number; batch: number; maxTokens?: number }): { noContextPerplexity: number; noContextAccuracy: number } {
  const maskId = 256 + data.merges + MLM_SHIFT;
  const p = new Float64Array(maskId + 1);
  let drawable = 0, total = 0;
  // add-one over the drawable ids, MLM_SHIFT … maskId − 1 (the separator, which is </s>, is never a label)
  const counts = mlmUnigram(data);
  for (let t = MLM_SHIFT; t < maskId; t++) { p[t] = counts[t]! + 1; total += counts[t]! + 1; drawable++; }
  for (let i = 0; i < p.length; i++) p[i] /= total;
  let top = MLM_SHIFT;
  for (let i = 0; i < p.length; i++) if (p[i]! > p[top]!) top = i;
  let nll = 0, correct = 0, n = 0;
  for (const b of heldOutMaskedBatches(data, opts)) {
    b.labels.forEach((row, r) => row.forEach((y, t) => {
      if (y === -100) return;
      const x = b.inputIds[r]![t]!;
      n++;
      if (x === b.maskId) { nll -= Math.log(p[y]!); correct += +(y === top); return; }
      const z = p[x]! + 1 / drawable;
      nll -= Math.log(((y === x ? p[x]! : 0) + p[y]! / drawable) / z);
      // x wins unless some p(y)/D beats p(x)(1 + 1/D)
      correct += +(y === (p[x]! * (1 + 1 / drawable) >= p[top]! / drawable ? x : top));
    }));
  }
  return { noContextPerplexity: Math.exp(nll / n), noContextAccuracy: correct / n };
}

const PREP: FlagSpec = {
  out: { kind: 'string', help: 'folder for the token files' },
  'held-out': { kind: 'number', help: 'held-out fraction of each source', default: 0.02 },
  seed: { kind: 'int', help: 'seed of the held-out cut and the document order', default: 0 },
  merges: { kind: 'int', help: 'BPE merges kept from GPT-2 (vocabulary 256 + merges + 1)', default: DEFAULT_MERGES },
  sources: { kind: 'list', help: `comma-separated subset of ${PRETRAINING_SOURCES.join(', ')}` },
};
const TRAIN: FlagSpec = {
  data: { kind: 'string', help: 'folder written by prepare' },
  run: { kind: 'string', help: 'run folder (settings + checkpoint); the same folder continues the run' },
  out: { kind: 'string', help: 'where the finished Hugging Face folder goes' },
  'budget-minutes': { kind: 'number', help: 'stop (and save) before this much wall-clock time' },
  preset: { kind: 'string', help: `model shape: ${Object.keys(PRESETS).join(', ')}`, default: 'd384-l6' },
  batch: { kind: 'int', help: 'sequences per step', default: 64 },
  block: { kind: 'int', help: 'tokens per sequence', default: 256 },
  lr: { kind: 'number', help: 'peak learning rate', default: 1e-3 },
  warmup: { kind: 'int', help: 'warm-up steps', default: 200 },
  'total-steps': { kind: 'int', help: 'optimizer updates the cosine schedule spans (the whole run, over all budgets)' },
  'weight-decay': { kind: 'number', help: 'AdamW weight decay', default: 0.1 },
  seed: { kind: 'int', help: 'initialisation and batch seed', default: 0 },
  backend: { kind: 'string', help: 'webgpu on the GPU machine; cpu/wasm for smoke tests', default: 'auto' },
  'eval-tokens': { kind: 'int', help: 'score only the held-out documents within this many tokens (default: all)' },
  'save-every-minutes': { kind: 'number', help: 'also checkpoint this often', default: 3 },
  'max-steps-this-run': { kind: 'int', help: 'stop after this many updates in this process (tests)' },
  'train-minutes': { kind: 'number', help: 'size the cosine schedule by training time over all runs instead of by --total-steps (then only the first estimate)' },
  init: { kind: 'string', help: 'start from this saved model folder instead of random weights (fresh optimizer)' },
  name: { kind: 'string', help: 'the exported model\'s name (its README title)' },
  snapshot: { kind: 'string', help: 'a stopped run also writes its current weights here (float16 HF folder, no evaluation)' },
  beta2: { kind: 'number', help: 'Adam β2 (default 0.95)' },
  clip: { kind: 'number', help: 'global gradient-norm clip, 0 for none (default 1)' },
  'mask-rate': { kind: 'number', help: 'masked LM: share of tokens predicted in training batches (default 0.15; evaluation always masks 15%)' },
  'position-init': { kind: 'string', help: 'the position table\'s initialisation: normal (HF, default) or sinusoidal (same RMS; a fresh run only)' },
};
const EVAL: FlagSpec = {
  model: { kind: 'string', help: 'a saved model folder' },
  data: { kind: 'string', help: 'folder written by prepare' },
  block: { kind: 'int', help: 'tokens per window', default: 256 },
  batch: { kind: 'int', help: 'windows per forward pass', default: 8 },
  'eval-tokens': { kind: 'int', help: 'score only the held-out documents within this many tokens (default: all)' },
  backend: { kind: 'string', help: 'backend', default: 'auto' },
  json: { kind: 'string', help: 'also write the metrics here' },
};
// eval's flags, with text files in place of the prepared data
const { model: _evalModel, data: _evalData, ...EVAL_SCORING } = EVAL;
const EVAL_TEXT: FlagSpec = {
  model: { kind: 'string', help: 'a saved causal model folder (with tokenizer.json and unigram-counts.json)' },
  text: { kind: 'list', help: 'comma-separated UTF-8 text files, each scored as one source' },
  ...EVAL_SCORING,
};
const SWEEP: FlagSpec = {
  data: { kind: 'string', help: 'folder written by prepare' },
  presets: { kind: 'list', help: 'comma-separated presets', default: 'd256-l6,d192-l8,d256-l12,d320-l8,d384-l6,d448-l4' },
  minutes: { kind: 'number', help: 'training minutes per preset' },
  out: { kind: 'string', help: 'JSON file of results (presets already in it are skipped)' },
  batch: { kind: 'int', help: 'sequences per step', default: 64 },
  block: { kind: 'int', help: 'tokens per sequence', default: 256 },
  lr: { kind: 'number', help: 'peak learning rate', default: 1e-3 },
  seed: { kind: 'int', help: 'seed', default: 0 },
  'eval-tokens': { kind: 'int', help: 'held-out tokens scored per preset', default: 200_000 },
  backend: { kind: 'string', help: 'backend', default: 'auto' },
};

function hooksFor(kind: Kind, data: TokenData, batch: number, block: number, seed: number, evalTokens: number | undefined, maskRate?: number): Hooks {
  const evaluate = async (model: Model, log: (s: string) => void): Promise<Record<string, unknown>> => {
    if (kind === 'causal') {
      const r = await causalBitsPerByte(model, data, { block, batch: 8, maxTokens: evalTokens, log });
      return { heldOutBitsPerByte: r.bitsPerByte, heldOutPerplexity: r.perplexity, heldOutTokens: r.tokens, heldOutBytes: r.bytes, heldOutDocuments: r.documents, bounded: r.bounded,
        unigramBitsPerByte: unigramBitsPerByte(data, r.documents), perSource: r.perSource };
    }
    return mlmMetrics(model, data, { block, batch: 16, maxTokens: evalTokens, log });
  };
  return {
    batch: (step) => (kind === 'causal' ? causalBatch(data, seed, step, batch, block) : mlmBatch(data, data.train, seed, step, batch, block, maskRate)),
    evaluate,
    tokenizer: () => (kind === 'causal' ? causalTokenizer(data.merges, block) : mlmTokenizer(data.merges, block)),
    extraFiles: kind === 'causal' ? (dir) => {
      // what test/embedded checks the perplexity claim with: the first 16 K held-out tokens and the training unigram counts
      writeFileSync(join(dir, 'heldout-tokens.bin'), Buffer.from(data.heldOut.slice(0, 8192).buffer));
      writeFileSync(join(dir, 'unigram-counts.json'), JSON.stringify(data.unigram));
    } : (dir) => {
      // the same for the encoder, in its own ids (test/embedded masks them itself): the folder alone is enough
      writeFileSync(join(dir, 'heldout-tokens.bin'), Buffer.from(Uint16Array.from(toMlm(data, data.heldOut.subarray(0, 8192))).buffer));
      writeFileSync(join(dir, 'unigram-counts.json'), JSON.stringify(mlmUnigram(data)));
    },
    describe: (s, m) => kind === 'causal'
      ? { title: s.name ?? 'sharelora-gpt2-mini', body: `A GPT-2-architecture causal LM (${s.config.n_layer} layers, ${s.config.n_embd} wide, ${s.config.n_head} heads, ${s.config.n_positions} positions, tied LM head, vocabulary ${s.config.vocab_size}: GPT-2's byte-level BPE cut to its first ${data.merges} merges) pretrained from random initialisation by this project's own TypeScript code (\`scripts/pretrain-causal.ts\`: full training through \`Trainer\` + AdamW). Held-out bits per byte ${(m.heldOutBitsPerByte as number).toFixed(3)} (total NLL in bits over the held-out documents ÷ their UTF-8 bytes), against ${(m.unigramBitsPerByte as number).toFixed(3)} for an add-one unigram model on the same tokens.` }
      : { title: s.name ?? 'sharelora-roberta-mini', body: `A RoBERTa-architecture masked LM (RobertaForMaskedLM: ${s.config.num_hidden_layers} layers, ${s.config.hidden_size} wide, ${s.config.num_attention_heads} heads, decoder tied to the word embeddings, vocabulary ${s.config.vocab_size}: GPT-2's byte-level BPE cut to ${data.merges} merges, shifted by 4 for \`<s> <pad> </s> <unk>\`, plus \`<mask>\`) pretrained from random initialisation by \`scripts/pretrain-mlm.ts\` with dynamic masking (15%: 80% \`<mask>\`, 10% random, 10% unchanged). Held-out masked-token accuracy ${(m.maskedAccuracy as number).toFixed(3)}, MLM perplexity ${(m.mlmPerplexity as number).toFixed(1)} (a model that reads no context, only its own position's token and the word frequencies: ${(m.noContextAccuracy as number).toFixed(3)} and ${(m.noContextPerplexity as number).toFixed(1)}). \`loadModel(dir, { task: 'seq-cls' })\` puts a fresh classification head on it.` },
  };
}

/** the optimizer and masking flags, checked; only those given */
function recipe(kind: Kind, f: Flags): Pick<RunSettings, 'beta2' | 'clip' | 'maskRate' | 'positionInit'> {
  const out: Pick<RunSettings, 'beta2' | 'clip' | 'maskRate' | 'positionInit'> = {};
  const pos = f['position-init'] as string | undefined;
  if (pos !== undefined) {
    if (pos !== 'normal' && pos !== 'sinusoidal') throw new UsageError(`train: --position-init must be normal or sinusoidal, got ${JSON.stringify(pos)}`);
    if (f.init !== undefined) throw new UsageError('train: --position-init applies to random initialisation, not to --init');
    if (pos === 'sinusoidal') out.positionInit = pos;
  }
  const b2 = f.beta2 as number | undefined, clip = f.clip as number | undefined, rate = f['mask-rate'] as number | undefined;
  if (b2 !== undefined) {
    if (!(b2 > 0 && b2 < 1)) throw new UsageError(`train: --beta2 must be in (0, 1), got ${b2}`);
    out.beta2 = b2;
  }
  if (clip !== undefined) {
    if (!(clip >= 0)) throw new UsageError(`train: --clip must be ≥ 0 (0: no clipping), got ${clip}`);
    out.clip = clip;
  }
  if (rate !== undefined) {
    if (kind !== 'mlm') throw new UsageError('train: --mask-rate is for the masked LM only');
    if (!(rate > 0 && rate < 1)) throw new UsageError(`train: --mask-rate must be in (0, 1), got ${rate}`);
    out.maskRate = rate;
  }
  return out;
}

export async function main(kind: Kind, argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const command = `node ${SCRIPT[kind]} ${argv.join(' ')}`;
  if (cmd === 'prepare') {
    const f = parseFlags(rest, PREP, 'prepare');
    const sources = f.sources as string[] | undefined;
    for (const s of sources ?? []) if (!PRETRAINING_SOURCES.includes(s as PretrainingSource)) throw new UsageError(`prepare: unknown source "${s}"; expected ${PRETRAINING_SOURCES.join(', ')}`);
    const t0 = performance.now();
    const stats = await prepare(need(f, 'out', 'prepare'), { heldOutFraction: f['held-out'] as number, seed: f.seed as number, merges: f.merges as number, sources: sources as PretrainingSource[] | undefined }, command);
    const { corpusStats: _, ...short } = stats;
    console.log(JSON.stringify(short, null, 1));
    console.log(`prepared in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    return 0;
  }
  if (cmd === 'train') {
    const f = parseFlags(rest, TRAIN, 'train');
    const data = readTokenData(need(f, 'data', 'train'));
    const [batch, block, seed] = [f.batch as number, f.block as number, f.seed as number];
    const p = preset(f.preset as string);
    const runDir = need<string>(f, 'run', 'train');
    const settings: RunSettings = {
      kind, preset: f.preset as string, config: modelConfig(kind, { ...p, positions: Math.max(p.positions, block) }, data), batch, block, lr: f.lr as number,
      warmup: f.warmup as number, totalSteps: need(f, 'total-steps', 'train'), seed, weightDecay: f['weight-decay'] as number,
      dataStats: { merges: data.merges, trainTokens: data.train.length, heldOutTokens: data.heldOut.length, seed: data.stats.seed as number },
      ...(f['train-minutes'] !== undefined ? { trainSeconds: 60 * (f['train-minutes'] as number) } : {}),
      ...(f.init !== undefined ? { init: f.init as string } : {}),
      ...(f.name !== undefined ? { name: f.name as string } : {}),
      // absent means the default, so runs started before these flags existed still resume
      ...recipe(kind, f),
      command: `${(data.stats.command as string | undefined) ?? '(prepare)'}\n${command.replace(/ --budget-minutes [^ ]+/, ' --budget-minutes 9')}`,
    };
    const status = await trainRun({
      runDir, outDir: need(f, 'out', 'train'), budgetSeconds: 60 * need<number>(f, 'budget-minutes', 'train'), backend: f.backend as string, settings,
      maxStepsThisRun: f['max-steps-this-run'] as number | undefined, saveEverySeconds: 60 * (f['save-every-minutes'] as number), snapshotDir: f.snapshot as string | undefined,
    }, hooksFor(kind, data, batch, block, seed, f['eval-tokens'] as number | undefined, settings.maskRate));
    console.log(`status: ${status}`);
    // 75 (EX_TEMPFAIL): stopped at the budget, run the same command again; `&&` after train then only fires once the model is exported
    return status === 'done' ? 0 : 75;
  }
  if (cmd === 'eval') {
    const f = parseFlags(rest, EVAL, 'eval');
    const info = await useBackend(f.backend as string);
    const data = readTokenData(need(f, 'data', 'eval'));
    const dir = need<string>(f, 'model', 'eval');
    const model = loadModelFromDir(dir, { task: kind === 'causal' ? 'causal-lm' : 'masked-lm' });
    const vocab = kind === 'causal' ? data.vocab : data.vocab + MLM_SHIFT;
    if (model.config.vocabSize < vocab) throw new UsageError(`${dir}: vocab_size ${model.config.vocabSize} is smaller than the prepared data's ${vocab}; prepare with this model's --merges`);
    const t0 = performance.now();
    const hooks = hooksFor(kind, data, f.block as number, f.block as number, 0, f['eval-tokens'] as number | undefined);
    const metrics = { model: dir, backend: info.name, parameters: model.baseParameterCount(), ...(await hooks.evaluate(model, (s) => console.log(s))), seconds: (performance.now() - t0) / 1000, command };
    console.log(JSON.stringify(metrics, null, 1));
    if (f.json) writeFileSync(f.json as string, JSON.stringify(metrics, null, 1) + '\n');
    return 0;
  }
  if (cmd === 'eval-text') {
    if (kind !== 'causal') throw new UsageError('eval-text scores a causal model (bits per byte); use pretrain-causal.js');
    const f = parseFlags(rest, EVAL_TEXT, 'eval-text');
    const dir = need<string>(f, 'model', 'eval-text');
    const files = (f.text as string[] | undefined) ?? [];
    if (!files.length) throw new UsageError('eval-text: --text needs one or more text files');
    for (const p of [...files, join(dir, 'unigram-counts.json'), join(dir, 'tokenizer.json')]) if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    const info = await useBackend(f.backend as string);
    const model = loadModelFromDir(dir, { task: 'causal-lm' });
    const unigram = JSON.parse(readFileSync(join(dir, 'unigram-counts.json'), 'utf8')) as number[];
    const merges = unigram.length - 257;
    if (model.config.vocabSize !== unigram.length) throw new UsageError(`${join(dir, 'unigram-counts.json')}: ${unigram.length} counts, but the model's vocabulary is ${model.config.vocabSize}`);
    const data = textAsHeldOut(files.map((p) => ({ source: basename(p), text: readFileSync(p, 'utf8') })), loadTokenizer(dir), merges, unigram);
    const t0 = performance.now();
    const maxTokens = f['eval-tokens'] as number | undefined;
    const r = await causalBitsPerByte(model, data, { block: f.block as number, batch: f.batch as number, ...(maxTokens !== undefined ? { maxTokens } : {}), log: (s) => console.log(s) });
    const metrics = { model: dir, backend: info.name, files, bitsPerByte: r.bitsPerByte, perplexity: r.perplexity, tokens: r.tokens, bytes: r.bytes, documents: r.documents, bounded: r.bounded,
      unigramBitsPerByte: unigramBitsPerByte(data, r.documents), perSource: r.perSource, seconds: (performance.now() - t0) / 1000, command };
    console.log(JSON.stringify(metrics, null, 1));
    if (f.json) writeFileSync(f.json as string, JSON.stringify(metrics, null, 1) + '\n');
    model.dispose();
    return 0;
  }
  if (cmd === 'sweep') {
    const f = parseFlags(rest, SWEEP, 'sweep');
    const data = readTokenData(need(f, 'data', 'sweep'));
    const presets = f.presets as string[] | string;
    const list = Array.isArray(presets) ? presets : presets.split(',');
    for (const p of list) preset(p);
    const hooks = hooksFor(kind, data, f.batch as number, f.block as number, f.seed as number, f['eval-tokens'] as number);
    await sweep({ kind, presets: list, minutes: need(f, 'minutes', 'sweep'), out: need(f, 'out', 'sweep'), backend: f.backend as string, data, batch: f.batch as number, block: f.block as number, lr: f.lr as number, seed: f.seed as number, command },
      { evaluate: hooks.evaluate, batch: (step, batch, block) => (kind === 'causal' ? causalBatch(data, f.seed as number, step, batch, block) : mlmBatch(data, data.train, f.seed as number, step, batch, block)) });
    return 0;
  }
  if (cmd === 'sizes') {
    // parameter counts and fp16 megabytes of every preset at a vocabulary (no training)
    const f = parseFlags(rest, { merges: { kind: 'int', help: 'BPE merges', default: DEFAULT_MERGES } }, 'sizes');
    const merges = f.merges as number;
    for (const [name, p] of Object.entries(PRESETS)) {
      const n = parameterCount(kind, modelConfig(kind, p, { merges }));
      console.log(`${name}\t${n}\t${((2 * n) / 1e6).toFixed(1)} MB`);
    }
    return 0;
  }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}; use prepare, train, eval, eval-text, sweep or sizes (node ${SCRIPT[kind]} <command> --flag value ...)`);
}

export async function cli(kind: Kind): Promise<void> {
  try {
    process.exitCode = await main(kind, process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) { console.error(e.message); process.exitCode = 2; return; }
    throw e;
  }
}
