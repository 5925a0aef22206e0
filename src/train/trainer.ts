/**
 * The training loop: AdamW (torch semantics), warm-up + linear/cosine decay,
 * global-norm clipping, gradient accumulation, evaluation, a history of every
 * step, and a stop flag polled between steps so an interrupt leaves the
 * model at the last completed update.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as aq from 'arquero';
import type { Model } from '../models/types.js';
import { Rng } from '../util/rng.js';
import { AdamW, type AdamWOptions } from './adamw.js';
import type { StepRecord, TrainerCallbacks } from './callbacks.js';
import { accuracy, pearson } from './metrics.js';
import { labelsTensor, lossAndGrads, type Batch, type Trainable } from './loss.js';
import { lrMultiplier, type ScheduleName } from './schedule.js';
import { clearStop, stopRequested, TrainingInterrupted } from './stop.js';

export interface TrainerOptions extends AdamWOptions {
  schedule?: ScheduleName;
  /** warm-up steps (optimizer updates); or warmupRatio of totalSteps */
  warmupSteps?: number;
  warmupRatio?: number;
  /** optimizer updates the schedule decays over; fit() sets it from epochs when absent */
  totalSteps?: number;
  /** clip the global gradient norm to this (torch clip_grad_norm_); 0 = off */
  maxGradNorm?: number;
  /** micro-batches per optimizer update */
  gradAccumulation?: number;
  /** what to do with a NaN/Inf loss or gradient: stop with an error (default) or skip the update */
  onNonFinite?: 'error' | 'skip';
  /** seed for data order */
  seed?: number;
  callbacks?: TrainerCallbacks[];
}

export class NonFiniteError extends Error {
  constructor(public readonly step: number, public readonly parameter: string) {
    super(`non-finite ${parameter === 'loss' ? 'loss' : `gradient for ${parameter}`} at step ${step}; parameters keep the values of step ${step - 1} (pass onNonFinite: 'skip' to skip such steps)`);
    this.name = 'NonFiniteError';
  }
}

export interface EvalResult { loss: number; metrics: Record<string, number> }

export interface FitOptions {
  /** batches of one epoch; shuffled per epoch unless shuffle is false */
  train: Batch[];
  epochs?: number;
  eval?: Batch[];
  /** evaluate every N optimizer updates (default: once per epoch) */
  evalEvery?: number;
  shuffle?: boolean;
}

export class Trainer {
  /** factories the notebook kernel registers (the live progress bar) */
  static defaultCallbacks: Array<() => TrainerCallbacks> = [];

  readonly optimizer: AdamW;
  readonly baseLr: number;
  readonly records: StepRecord[] = [];
  readonly opts: Required<Pick<TrainerOptions, 'schedule' | 'maxGradNorm' | 'gradAccumulation' | 'onNonFinite' | 'seed'>> & TrainerOptions;
  /** micro-batches seen; optimizer updates are optimizer.step */
  microStep = 0;
  epoch = 0;
  /** position in the current epoch's order, for resuming */
  cursor = 0;
  rng: Rng;
  private accum = new Map<string, tf.Tensor>();
  private accumLoss = 0;

  constructor(readonly model: Model, readonly adapter: Trainable, opts: TrainerOptions = {}) {
    this.opts = { schedule: 'constant', maxGradNorm: 0, gradAccumulation: 1, onNonFinite: 'error', seed: 0, ...opts };
    if (!Number.isSafeInteger(this.opts.gradAccumulation) || this.opts.gradAccumulation < 1) throw new Error(`gradAccumulation must be a positive integer, got ${opts.gradAccumulation}`);
    this.optimizer = new AdamW(opts);
    this.baseLr = this.optimizer.lr;
    this.rng = new Rng(this.opts.seed);
  }

  /** optimizer updates done so far */
  get updates(): number { return this.optimizer.step; }

  private warmup(total: number): number {
    return this.opts.warmupSteps ?? Math.round((this.opts.warmupRatio ?? 0) * total);
  }

  /** learning rate for the next optimizer update */
  currentLr(): number {
    const total = this.opts.totalSteps ?? Infinity;
    if (this.opts.schedule !== 'constant' && !Number.isFinite(total)) throw new Error(`schedule "${this.opts.schedule}" needs totalSteps (or use fit(), which sets it)`);
    return this.baseLr * lrMultiplier(this.opts.schedule, this.optimizer.step, this.warmup(total), total);
  }

  /**
   * One micro-batch: forward, backward, and (every gradAccumulation calls)
   * clip + AdamW update. Returns the loss before the update.
   */
  step(batch: Batch): number {
    const t0 = performance.now();
    const { loss, grads } = lossAndGrads(this.model, this.adapter, batch, { training: true });
    const k = this.opts.gradAccumulation;
    for (const [name, g] of grads) {
      const prev = this.accum.get(name);
      const scaled = k === 1 ? g : tf.tidy(() => tf.add(prev ?? tf.zerosLike(g), tf.div(g, k)));
      if (k !== 1) { prev?.dispose(); g.dispose(); }
      this.accum.set(name, scaled);
    }
    this.accumLoss += loss / k;
    this.microStep += 1;
    if (this.microStep % k !== 0) return loss;

    const params = this.adapter.namedParameters();
    const updateStep = this.optimizer.step + 1;
    try {
      const { norm, bad } = this.globalNorm();
      if (!Number.isFinite(this.accumLoss) || bad) {
        const err = new NonFiniteError(updateStep, Number.isFinite(this.accumLoss) ? bad! : 'loss');
        if (this.opts.onNonFinite === 'error') throw err;
        this.records.push(this.record(updateStep, this.accumLoss, NaN, norm, batch, t0));
        return loss;
      }
      if (this.opts.maxGradNorm > 0) {
        const coef = this.opts.maxGradNorm / (norm + 1e-6);
        if (coef < 1) for (const [n, g] of this.accum) { this.accum.set(n, tf.mul(g, coef)); g.dispose(); }
      }
      const lr = this.currentLr();
      this.optimizer.lr = lr;
      this.optimizer.apply(params, this.accum);
      this.records.push(this.record(updateStep, this.accumLoss, lr, norm, batch, t0));
    } finally {
      tf.dispose([...this.accum.values()]);
      this.accum.clear();
      this.accumLoss = 0;
    }
    return loss;
  }

  /** global L2 norm of the accumulated gradients, and the first non-finite one */
  private globalNorm(): { norm: number; bad?: string } {
    const names = [...this.accum.keys()];
    const sq = tf.tidy(() => tf.stack(names.map((n) => tf.sum(tf.square(this.accum.get(n)!)))).dataSync());
    const bad = names.find((_, i) => !Number.isFinite(sq[i]));
    let total = 0;
    for (const s of sq) total += s;
    return { norm: Math.sqrt(total), bad };
  }

  private record(step: number, loss: number, lr: number, gradNorm: number, batch: Batch, t0: number): StepRecord {
    const ids = batch.inputIds as { shape?: number[]; length?: number };
    const tokens = ids.shape ? ids.shape[0] * ids.shape[1] : (batch.inputIds as number[][]).reduce((a, r) => a + r.length, 0);
    return { step, epoch: this.epoch, loss, lr, gradNorm, tokens: tokens * this.opts.gradAccumulation, seconds: (performance.now() - t0) / 1000 };
  }

  /** Mean loss over batches, plus accuracy (classification), Pearson (regression) or perplexity (LM). */
  evaluate(batches: Batch[]): EvalResult {
    let lossSum = 0, n = 0;
    const preds: number[] = [], gold: number[] = [];
    for (const b of batches) {
      tf.tidy(() => {
        const labels = labelsTensor(b.labels, this.model);
        const { logits } = this.model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask });
        const w = this.model.task === 'causal-lm' ? 1 : labels.shape[0];
        lossSum += this.model.loss(logits, labels).dataSync()[0] * w;
        n += w;
        if (this.model.task === 'seq-cls') {
          gold.push(...labels.dataSync());
          preds.push(...(this.model.config.numLabels === 1 ? tf.reshape(logits, [-1]) : tf.argMax(logits, -1)).dataSync());
        }
      });
    }
    const loss = lossSum / Math.max(1, n);
    const metrics: Record<string, number> = {};
    if (this.model.task === 'causal-lm') metrics.perplexity = Math.exp(loss);
    else if (this.model.config.numLabels === 1) metrics.pearson = pearson(preds, gold);
    else metrics.accuracy = accuracy(preds, gold);
    return { loss, metrics };
  }

  /**
   * Train for some epochs, polling the stop flag between steps (the kernel's
   * interrupt button sets it). Resumes from epoch/cursor when called again.
   */
  async fit(o: FitOptions): Promise<aq.ColumnTable> {
    const epochs = o.epochs ?? 1;
    if (!o.train.length) throw new Error('fit: the training set has no batches');
    const perEpoch = Math.ceil(o.train.length / this.opts.gradAccumulation);
    this.opts.totalSteps ??= perEpoch * epochs;
    const totalSteps = this.opts.totalSteps;
    const evalEvery = o.evalEvery ?? perEpoch;
    const cbs = [...(this.opts.callbacks ?? []), ...Trainer.defaultCallbacks.map((f) => f())];
    clearStop();
    cbs.forEach((c) => c.onStart?.({ totalSteps }));
    let interrupted = false;
    try {
      for (; this.epoch < epochs; this.epoch++, this.cursor = 0) {
        const order = o.shuffle === false ? o.train.map((_, i) => i) : new Rng(this.opts.seed * 7919 + this.epoch).permutation(o.train.length);
        for (; this.cursor < order.length; ) {
          if (stopRequested()) { interrupted = true; throw new TrainingInterrupted(this.updates); }
          const before = this.records.length;
          this.step(o.train[order[this.cursor]]);
          this.cursor++;
          if (this.records.length > before) {
            const rec = this.records[this.records.length - 1];
            if (o.eval?.length && this.updates % evalEvery === 0) {
              const r = this.evaluate(o.eval);
              rec.evalLoss = r.loss;
              rec.evalMetric = Object.values(r.metrics)[0];
              cbs.forEach((c) => c.onEval?.({ step: this.updates, evalLoss: r.loss, metrics: r.metrics }));
            }
            cbs.forEach((c) => c.onStep?.(rec, { totalSteps }));
          }
          // let SIGINT handlers and display messages run between steps
          await new Promise((r) => setImmediate(r));
        }
      }
    } finally {
      cbs.forEach((c) => c.onEnd?.({ steps: this.updates, interrupted }));
    }
    return this.history;
  }

  /** every optimizer update as an arquero table (step, epoch, loss, lr, gradNorm, tokens, seconds, evalLoss, evalMetric) */
  get history(): aq.ColumnTable {
    const cols = ['step', 'epoch', 'loss', 'lr', 'gradNorm', 'tokens', 'seconds', 'evalLoss', 'evalMetric'] as const;
    const data: Record<string, Array<number | null>> = {};
    for (const c of cols) data[c] = this.records.map((r) => (r[c] ?? null) as number | null);
    return aq.table(data);
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([...this.accum.values()]);
    this.accum.clear();
  }
}
