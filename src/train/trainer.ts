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
import { labelsTensor, lossAndGradTensors, type Batch, type Trainable } from './loss.js';
import { fused } from '../backend/webgpu/active.js';
import { lrMultiplier, type ScheduleName } from './schedule.js';
import { clearStop, stopRequested, TrainingInterrupted } from './stop.js';
import type { ResumeOptions } from './checkpoint.js';

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

/** `parameter` is the first parameter (in namedParameters() order) whose gradient is NaN/Inf, or 'loss' when only the loss is. */
export class NonFiniteError extends Error {
  constructor(public readonly step: number, public readonly parameter: string, public readonly loss?: number) {
    const lossBad = loss !== undefined && !Number.isFinite(loss);
    super(`non-finite ${parameter === 'loss' ? `loss (${loss})` : `gradient for ${parameter}${lossBad ? ` (and loss ${loss})` : ''}`} at step ${step}; parameters and optimizer state keep the values of step ${step - 1} (pass onNonFinite: 'skip' to skip such steps)`);
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
  /** @internal gradients summed (÷ gradAccumulation) since the last update; checkpoints save them */
  accum = new Map<string, tf.Tensor>();
  /** @internal */
  accumLoss = 0;
  /** @internal micro-batches in `accum` */
  accumCount = 0;

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
  async step(batch: Batch): Promise<number> {
    return this.exclusive(() => this.stepNow(batch));
  }

  /**
   * step(), flush() and save() run one at a time, in call order: a save()
   * issued while a step is in flight (an un-awaited fit() in one cell, save
   * in the next) waits for it and writes the state between two steps.
   */
  private queue: Promise<unknown> = Promise.resolve();
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async stepNow(batch: Batch): Promise<number> {
    const t0 = performance.now();
    const { loss: lossT, grads } = lossAndGradTensors(this.model, this.adapter, batch, { training: true });
    const k = this.opts.gradAccumulation;
    for (const [name, g] of grads) {
      const prev = this.accum.get(name);
      const scaled = k === 1 ? g : tf.tidy(() => tf.add(prev ?? tf.zerosLike(g), tf.div(g, k)));
      if (k !== 1) { prev?.dispose(); g.dispose(); }
      this.accum.set(name, scaled);
    }
    this.accumCount += 1;
    this.microStep += 1;
    const updating = this.accumCount === k;
    // one read for the loss and, when updating, every gradient's statistics
    const statsT = updating ? this.gradStats() : undefined;
    const both = tf.tidy(() => statsT ? tf.concat([tf.reshape(lossT, [1]), tf.reshape(statsT, [-1])]) : tf.reshape(lossT, [1]));
    tf.dispose([lossT, statsT]);
    const values = await both.data();
    both.dispose();
    const loss = values[0];
    this.accumLoss += loss / k;
    if (updating) await this.update(batch, t0, values.subarray(1));
    return loss;
  }

  /**
   * Apply what is accumulated, if anything: fit() calls this at the end of an
   * epoch whose batches do not divide by gradAccumulation, so no gradient is
   * dropped and the schedule's ceil(batches / k) updates per epoch all happen.
   */
  async flush(batch: Batch): Promise<void> {
    return this.exclusive(async () => { if (this.accumCount > 0) await this.update(batch, performance.now()); });
  }

  private async update(batch: Batch, t0: number, stats?: ArrayLike<number>): Promise<void> {
    const params = this.adapter.namedParameters();
    const updateStep = this.optimizer.step + 1;
    try {
      const { norm, bad } = await this.globalNorm(stats);
      if (!Number.isFinite(this.accumLoss) || bad) {
        const err = new NonFiniteError(updateStep, bad ?? 'loss', this.accumLoss);
        if (this.opts.onNonFinite === 'error') throw err;
        this.records.push(this.record(updateStep, this.accumLoss, NaN, norm, batch, t0));
        return;
      }
      const coef = this.opts.maxGradNorm > 0 ? this.opts.maxGradNorm / (norm + 1e-6) : 1;
      const lr = this.currentLr();
      this.optimizer.lr = lr;
      this.optimizer.apply(params, this.accum, Math.min(1, coef));
      this.records.push(this.record(updateStep, this.accumLoss, lr, norm, batch, t0));
    } finally {
      tf.dispose([...this.accum.values()]);
      this.accum.clear();
      this.accumLoss = 0;
      this.accumCount = 0;
    }
  }

  /**
   * Global L2 norm of the accumulated gradients (in float64, so a finite
   * gradient whose float32 sum of squares overflows is not mistaken for a
   * NaN), and the first parameter whose gradient holds NaN or Inf.
   */
  private async globalNorm(given?: ArrayLike<number>): Promise<{ norm: number; bad?: string }> {
    const names = [...this.accum.keys()];
    if (!names.length) return { norm: 0 };
    const stats: ArrayLike<number> = given ?? await (async () => {
      const statsT = this.gradStats()!;
      const v = await statsT.data();
      statsT.dispose();
      return v;
    })();
    const bad = names.find((_, i) => stats[2 * i + 1] !== 1);
    let total = 0;
    for (let i = 0; i < names.length; i++) {
      let sq = stats[2 * i];
      if (!Number.isFinite(sq) && !bad) {
        // ‖g‖² = max² · Σ(g/max)²: every term ≤ 1, so nothing overflows
        const g = this.accum.get(names[i])!;
        const ms = tf.tidy(() => { const max = tf.max(tf.abs(g)); return tf.stack([max, tf.sum(tf.square(tf.div(g, max)))]); });
        const [m, s] = await ms.data();
        ms.dispose();
        sq = m * m * s;
      }
      total += sq;
    }
    return { norm: Math.sqrt(total), bad };
  }

  /** [n, 2]: each accumulated gradient's Σg² and all-finite flag, still on the device */
  private gradStats(): tf.Tensor | undefined {
    if (!this.accum.size) return undefined;
    const fz = fused();
    return tf.tidy(() => tf.stack([...this.accum.values()].map((g) =>
      fz ? fz.gradStats(g) : tf.stack([tf.sum(tf.square(g)), tf.cast(tf.all(tf.isFinite(g)), 'float32')]))));
  }

  private record(step: number, loss: number, lr: number, gradNorm: number, batch: Batch, t0: number): StepRecord {
    const ids = batch.inputIds as { shape?: number[]; length?: number };
    const tokens = ids.shape ? ids.shape[0] * ids.shape[1] : (batch.inputIds as number[][]).reduce((a, r) => a + r.length, 0);
    return { step, epoch: this.epoch, loss, lr, gradNorm, tokens: tokens * this.opts.gradAccumulation, seconds: (performance.now() - t0) / 1000 };
  }

  /**
   * Mean loss over examples (classification) or predicted tokens (causal LM,
   * so perplexity does not depend on how the tokens were batched), plus
   * accuracy, Pearson (regression) or perplexity.
   */
  async evaluate(batches: Batch[]): Promise<EvalResult> {
    let lossSum = 0, n = 0;
    const preds: number[] = [], gold: number[] = [];
    for (const b of batches) {
      const [lossT, labels, pred, countT] = tf.tidy(() => {
        const labels = labelsTensor(b.labels, this.model);
        const { logits } = this.model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask });
        const pred = this.model.task === 'seq-cls' ? (this.model.config.numLabels === 1 ? tf.reshape(logits, [-1]) : tf.argMax(logits, -1)) : tf.zeros([0]);
        // a causal-LM batch's loss is its mean over predicted tokens (labels[:, 1:] not -100): weigh it by them
        const [B, T] = labels.shape;
        const count = this.model.task === 'causal-lm'
          ? tf.sum(tf.cast(tf.notEqual(tf.slice(labels, [0, 1], [B, T - 1]), -100), 'float32'))
          : this.model.task === 'masked-lm' ? tf.sum(tf.cast(tf.notEqual(labels, -100), 'float32')) : tf.scalar(B);
        return [this.model.loss(logits, labels), labels, pred, count];
      });
      const both = tf.tidy(() => tf.stack([tf.reshape(lossT, []), countT]));
      const [lossV, w] = await both.data();
      tf.dispose([both, countT]);
      lossSum += lossV * w;
      n += w;
      if (this.model.task === 'seq-cls') {
        gold.push(...(await labels.data()));
        preds.push(...(await pred.data()));
      }
      tf.dispose([lossT, labels, pred]);
    }
    const loss = lossSum / Math.max(1, n);
    const metrics: Record<string, number> = {};
    if (this.model.task !== 'seq-cls') metrics.perplexity = Math.exp(loss);
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
          const batch = o.train[order[this.cursor]];
          await this.step(batch);
          this.cursor++;
          if (this.cursor === order.length) await this.flush(batch);
          if (this.records.length > before) {
            const rec = this.records[this.records.length - 1];
            if (o.eval?.length && this.updates % evalEvery === 0) {
              const r = await this.evaluate(o.eval);
              rec.evalLoss = r.loss;
              rec.evalMetric = Object.values(r.metrics)[0];
              cbs.forEach((c) => c.onEval?.({ step: this.updates, evalLoss: r.loss, metrics: r.metrics }));
            }
            cbs.forEach((c) => c.onStep?.(rec, { totalSteps }));
          }
          // let SIGINT handlers and display messages run between steps (reads are async, but may resolve synchronously on cpu)
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

  /**
   * Write a checkpoint folder: the adapter (a PEFT folder), AdamW moments and
   * step, schedule and data position, RNG and dropout counters, and history.
   * The folder is replaced atomically (checkpoint.ts). Called while a
   * step() is in flight, it waits for that step and saves before the next.
   */
  async save(dir: string): Promise<void> {
    const { saveCheckpoint } = await import('./checkpoint.js');
    return this.exclusive(() => saveCheckpoint(this, dir));
  }

  /**
   * Rebuild the adapter on `model` and a trainer that continues exactly where
   * save() left off; fit() with the same data then resumes mid-epoch.
   * `opts` overrides saved options (callbacks are never saved).
   */
  static async resume(dir: string, model: Model, opts: ResumeOptions = {}): Promise<Trainer> {
    const { resumeCheckpoint } = await import('./checkpoint.js');
    return resumeCheckpoint(dir, model, opts);
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([...this.accum.values()]);
    this.accum.clear();
    this.accumLoss = 0;
    this.accumCount = 0;
  }
}
