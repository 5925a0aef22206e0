/**
 * The training loop: AdamW (torch semantics), warm-up + linear/cosine decay,
 * global-norm clipping, gradient accumulation, evaluation, a history of every
 * step, and a stop flag polled between steps so an interrupt leaves the
 * model at the last completed update.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as aq from 'arquero';
import type { Model } from '../models/types.js';
import { checkOptions, describeValue, optionKeys, OptionsError } from '../util/options.js';
import { Rng } from '../util/rng.js';
import { AdamW } from './adamw.js';
import { IGNORE_INDEX } from '../backend/labels.js';
import { isRegression } from '../models/heads.js';
import { BatchError, checkBatch, deviceBatchCheck, deviceCheckPassed, failDeviceCheck, lossLabelCount } from './batch.js';
import type { StepRecord, TrainerCallbacks } from './callbacks.js';
import { accuracy, pearson } from './metrics.js';
import { forwardForLoss, labelsTensor, lossAndGradTensors, type Batch, type Trainable } from './loss.js';
import { gradStatsMany, stepControl } from '../backend/ops.js';
import { assertGpuHealthy } from '../backend/index.js';
import { flags } from '../backend/flags.js';
import { StepReplayer, type ReplaySummary, type StepPass } from './step-replay.js';
import { lrMultiplier } from './schedule.js';
import { checkAgainst, fromHost, toHost } from './host.js';
import type { TrainerState } from './state.js';
import { checkWarmup, resolveTrainerOptions, type ResolvedTrainerOptions, type TrainerOptions } from './options.js';
import { clearStop, stopRequested, TrainingInterrupted } from './stop.js';
import { resumeCheckpoint, saveCheckpoint, type ResumeOptions } from './checkpoint.js';

export type { TrainerOptions } from './options.js';
export type { HostTensor } from './host.js';
export type { TrainerState } from './state.js';

/**
 * `parameter` is the first parameter (in namedParameters() order) whose
 * gradient is NaN/Inf, or whose update would be (kind 'update': finite
 * gradients, but the AdamW step overflows float32), or 'loss' when only the
 * loss is.
 */
export class NonFiniteError extends Error {
  readonly kind: 'loss' | 'gradient' | 'update';
  constructor(public readonly step: number, public readonly parameter: string, public readonly loss?: number, kind?: 'update') {
    const lossBad = loss !== undefined && !Number.isFinite(loss);
    const what = kind === 'update' ? `update for ${parameter} (finite gradients, but the AdamW step overflows float32: lower lr, raise eps or clip gradients)`
      : parameter === 'loss' ? `loss (${loss})` : `gradient for ${parameter}${lossBad ? ` (and loss ${loss})` : ''}`;
    super(`non-finite ${what} at step ${step}; parameters and optimizer state keep the values of step ${step - 1} (pass onNonFinite: 'skip' to skip such steps)`);
    this.name = 'NonFiniteError';
    this.kind = kind ?? (parameter === 'loss' ? 'loss' : 'gradient');
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
const FIT_KEYS = optionKeys<FitOptions>()(['train', 'epochs', 'eval', 'evalEvery', 'shuffle']);

export class Trainer {
  /** factories the notebook kernel registers (the live progress bar) */
  static defaultCallbacks: Array<() => TrainerCallbacks> = [];

  readonly optimizer: AdamW;
  readonly records: StepRecord[] = [];
  /** every setting, checked and defaulted (resolveTrainerOptions); frozen */
  readonly opts: ResolvedTrainerOptions;
  /** optimizer updates the schedule decays over: the totalSteps option, else what fit() derives from its epochs */
  totalSteps: number | undefined;
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
  /** inside fit() on webgpu (unless SHARELORA_WEBGPU_REPLAY=0): recorded steps replayed (step-replay.ts) */
  private replayer: StepReplayer | undefined;
  /** how the last fit()'s steps ran: how many were replayed, and why a batch shape was not (undefined: no replay was tried) */
  lastReplay: ReplaySummary | undefined;

  constructor(readonly model: Model, readonly adapter: Trainable, opts: TrainerOptions = {}) {
    this.opts = resolveTrainerOptions(opts);
    this.totalSteps = this.opts.totalSteps;
    this.optimizer = new AdamW({ betas: [...this.opts.betas] as [number, number], eps: this.opts.eps, weightDecay: this.opts.weightDecay });
    this.rng = new Rng(this.opts.seed);
  }

  /** optimizer updates done so far */
  get updates(): number { return this.optimizer.step; }

  /** the lr option: the peak the schedule scales (stored once, in opts) */
  get baseLr(): number { return this.opts.lr; }

  private warmup(total: number): number {
    return this.opts.warmupSteps ?? Math.round((this.opts.warmupRatio ?? 0) * total);
  }

  /** learning rate for the next optimizer update */
  currentLr(): number {
    this.needTotal('currentLr');
    return this.lrAt(this.optimizer.step);
  }

  /** the lr the last update used (its record's; the base lr before any update): what a state records as optimizer.lr */
  private lastLr(): number {
    const step = this.optimizer.step;
    if (step === 0) return this.opts.lr;
    for (let i = this.records.length - 1; i >= 0; i--) if (this.records[i].step === step && Number.isFinite(this.records[i].lr)) return this.records[i].lr;
    return this.lrAt(step - 1);
  }

  /** the learning rate of update `step` (0-based) under the options' schedule and the current totalSteps */
  private lrAt(step: number): number {
    const total = this.totalSteps ?? Infinity;
    return this.opts.lr * lrMultiplier(this.opts.schedule, step, this.warmup(total), total);
  }

  private needTotal(where: string): void {
    if (this.opts.schedule !== 'constant' && this.totalSteps === undefined) {
      throw new OptionsError(where, 'totalSteps', `is needed by schedule "${this.opts.schedule}" (pass it to the Trainer, or train with fit(), which sets it from its epochs)`);
    }
  }

  /**
   * One micro-batch: forward, backward, and (every gradAccumulation calls)
   * clip + AdamW update. Returns the loss before the update. A bad batch is
   * a BatchError and changes nothing.
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
  private disposed = false;
  private exclusive<T>(body: () => Promise<T>): Promise<T> {
    // its AdamW moments are freed: a step would silently restart them from zero
    const fn = () => (this.disposed ? Promise.reject(new Error('this Trainer was disposed (trainer.dispose() freed its optimizer state); create a new Trainer, or Trainer.resume() from a checkpoint')) : body());
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async stepNow(batch: Batch): Promise<number> {
    const t0 = performance.now();
    checkBatch('trainer.step', batch, this.model, true);
    this.needTotal('trainer.step');
    const k = this.opts.gradAccumulation;
    const updating = this.accumCount + 1 === k;
    const pass = this.replayer && k === 1
      ? await this.replayer.pass(batch, (fwd, check) => this.forwardBackward(fwd, check, updating))
      : await this.forwardBackward(batch, batch, updating);
    return this.finishPass(batch, t0, pass, updating);
  }

  /** a step's pass read back: the device check, the accumulation and (when updating) the update */
  private async finishPass(batch: Batch, t0: number, pass: StepPass, updating: boolean): Promise<number> {
    const k = this.opts.gradAccumulation;
    const { values, nCheck } = pass;
    // the sums are only committed once the batch has passed its device check;
    // until then `accum` still holds the previous micro-batches' gradients
    let next: Map<string, tf.Tensor> | undefined = pass.next;
    try {
      if (nCheck && !deviceCheckPassed(values.subarray(1, 1 + nCheck), true)) {
        await failDeviceCheck('trainer.step', batch, this.model, values.subarray(1, 1 + nCheck), true);
      }
      if (k !== 1) tf.dispose([...this.accum.values()]);
      this.accum = next;
      next = undefined;
      const loss = values[0];
      this.accumCount += 1;
      this.microStep += 1;
      this.accumLoss += loss / k;
      if (updating) await this.update(batch, t0, values.subarray(1 + nCheck));
      return loss;
    } finally {
      // the batch failed: its gradients go, the accumulation stays as it was
      if (next) tf.dispose([...next.values()]);
    }
  }

  /** a pipelined step whose read is not yet settled (fitStep) */
  private pending: { read: Promise<Float32Array>; nCheck: number; batch: Batch; t0: number; lr: number; epoch: number; cursor: number; token: { step: number; gradBound: number } } | undefined;

  /**
   * fit()'s step. With SHARELORA_WEBGPU_PIPELINE=1, once a batch shape's replay
   * is verified, step k's update is submitted at once, its clipping
   * coefficient and whether to apply it computed on the device
   * (ops.stepControl), and step k's read is settled during step k+1, so the
   * GPU does not wait for the host between steps. Records, errors and
   * parameters are step()'s: a step the device did not apply (a non-finite
   * loss or gradient, a bad batch, a Σg² beyond float32) changed nothing, and
   * when its read shows that, it is done again on the normal path, which
   * raises or records exactly as step() does (the next step's pass, made
   * meanwhile, is done again too). Records come as the steps settle
   * (settlePipeline). @internal fit()'s step, and the benchmark's.
   */
  async fitStep(batch: Batch): Promise<void> {
    return this.exclusive(() => this.fitStepNow(batch));
  }

  private async fitStepNow(batch: Batch): Promise<void> {
    const normal = async () => { await this.settleNow(); await this.stepNow(batch); };
    if (!flags.webgpuPipeline || !this.replayer || this.opts.gradAccumulation !== 1 || !(this.opts.maxGradNorm > 0)) return normal();
    const t0 = performance.now();
    checkBatch('trainer.step', batch, this.model, true);
    this.needTotal('trainer.step');
    const sub = this.replayer.submit(batch);
    if (!sub) return normal();
    let grads: Map<string, tf.Tensor> | undefined = sub.outputs;
    let ctrl: tf.Tensor | undefined;
    let read: Promise<Float32Array> | undefined = sub.read;
    try {
      if (await this.settleNow()) {
        // the previous step was done again: this pass read parameters that may since have changed
        await read;
        read = undefined;
        tf.dispose([...grads.values()]);
        grads = undefined;
        await this.stepNow(batch);
        return;
      }
      const lr = this.currentLr();
      if (sub.values) ctrl = stepControl(sub.values, { nCheck: sub.nCheck, n: grads.size, maxNorm: this.opts.maxGradNorm });
      const token = ctrl ? this.optimizer.applyControlled(this.adapter.namedParameters(), grads, lr, ctrl, this.opts.maxGradNorm) : null;
      if (!token) {
        // not provably finite without the norm (or no device control): this step as step() does it, from its own read
        const values = await read;
        read = undefined;
        const next = grads;
        grads = undefined;
        await this.finishPass(batch, t0, { values, nCheck: sub.nCheck, next }, true);
        return;
      }
      this.microStep += 1;
      this.pending = { read, nCheck: sub.nCheck, batch, t0, lr, epoch: this.epoch, cursor: this.cursor, token };
      read = undefined;
    } finally {
      sub.values?.dispose();
      ctrl?.dispose();
      if (grads) tf.dispose([...grads.values()]);
      // a read nobody will await (an error above): its failure is not this step's
      read?.catch(() => undefined);
    }
  }

  /** @internal settle the pipelined step in flight, if any (fit() does this before an evaluation and at an epoch's end) */
  async settlePipeline(): Promise<void> {
    await this.exclusive(() => this.settleNow());
  }

  /**
   * Read the pending pipelined step and record it; if the device did not apply
   * it (its decision is recomputed here from the same values, in the same
   * float32 order), undo the optimistic step count and do the step again on
   * the normal path. True when it was done again.
   */
  private async settleNow(): Promise<boolean> {
    const p = this.pending;
    if (!p) return false;
    this.pending = undefined;
    const values = await p.read;
    const loss = values[0];
    let ok = Number.isFinite(loss) && (p.nCheck === 0 || deviceCheckPassed(values.subarray(1, 1 + p.nCheck), true));
    let s32 = 0, total = 0;
    for (let i = 1 + p.nCheck; i + 1 < values.length; i += 2) {
      if (values[i + 1] !== 1) ok = false;
      s32 = Math.fround(s32 + values[i]);
      total += values[i];
    }
    if (!Number.isFinite(s32)) ok = false;
    if (!ok) {
      this.optimizer.undo(p.token);
      this.microStep -= 1;
      // fit() has moved past this batch; if it fails again, fit() stops where step() would have: at this batch
      const at = { epoch: this.epoch, cursor: this.cursor };
      ({ epoch: this.epoch, cursor: this.cursor } = p);
      await this.stepNow(p.batch);
      ({ epoch: this.epoch, cursor: this.cursor } = at);
      return true;
    }
    this.records.push({ ...this.record(p.token.step + 1, loss, p.lr, Math.sqrt(total), p.batch, p.t0), epoch: p.epoch });
    return false;
  }

  /**
   * Forward, backward, the accumulated gradients, the device check of
   * `check`'s tensor parts and (when updating) the gradient statistics, read
   * back in one round trip. `fwd` is what the model sees: the batch itself,
   * or (step replay) the same batch as tensors.
   */
  private async forwardBackward(fwd: Batch, check: Batch, updating: boolean): Promise<StepPass> {
    const { loss: lossT, grads } = await this.explained('trainer.step', check, true, () => lossAndGradTensors(this.model, this.adapter, fwd, { training: true }));
    const k = this.opts.gradAccumulation;
    const next = new Map<string, tf.Tensor>();
    let checkT: tf.Tensor | undefined, both: tf.Tensor | undefined;
    try {
      for (const [name, g] of grads) {
        next.set(name, k === 1 ? g : tf.tidy(() => { const prev = this.accum.get(name); const s = tf.div(g, k); return prev ? tf.add(prev, s) : s; }));
      }
      if (k !== 1) tf.dispose([...grads.values()]);
      checkT = deviceBatchCheck(check, this.model);
      const statsT = updating ? gradStats(next) : undefined;
      both = tf.tidy(() => tf.concat([tf.reshape(lossT, [1]), ...(checkT ? [checkT] : []), ...(statsT ? [tf.reshape(statsT, [-1])] : [])]));
      statsT?.dispose();
      const values = await both.data() as Float32Array;
      return { values, nCheck: checkT ? checkT.size : 0, next };
    } catch (e) {
      tf.dispose([...next.values(), ...grads.values()]);
      throw e;
    } finally {
      tf.dispose([lossT, checkT, both]);
    }
  }

  /**
   * Run the forward pass of a batch with tensor parts; if it throws (the cpu
   * backend's gather refuses an id beyond the vocabulary; webgpu reads a 0
   * and goes on to the device check), a bad value in the batch is the
   * reason to report, not the kernel's message.
   */
  private async explained<T>(where: string, batch: Batch, training: boolean, fn: () => T): Promise<T> {
    try {
      return fn();
    } catch (e) {
      const checkT = deviceBatchCheck(batch, this.model);
      if (!checkT) throw e;
      const counts = await checkT.data();
      checkT.dispose();
      if (!deviceCheckPassed(counts, training)) await failDeviceCheck(where, batch, this.model, counts, training);
      throw e;
    }
  }

  /**
   * Apply what is accumulated, if anything: fit() calls this at the end of an
   * epoch whose batches do not divide by gradAccumulation, so no gradient is
   * dropped and the schedule's ceil(batches / k) updates per epoch all happen.
   */
  async flush(batch: Batch): Promise<void> {
    return this.exclusive(async () => { await this.settleNow(); if (this.accumCount > 0) await this.update(batch, performance.now()); });
  }

  private async update(batch: Batch, t0: number, stats?: ArrayLike<number>): Promise<void> {
    const params = this.adapter.namedParameters();
    const updateStep = this.optimizer.step + 1;
    try {
      const { norm, bad } = await this.globalNorm(stats);
      if (!Number.isFinite(this.accumLoss) || bad) return this.nonFinite(new NonFiniteError(updateStep, bad ?? 'loss', this.accumLoss), batch, norm, t0);
      const coef = Math.min(1, this.opts.maxGradNorm > 0 ? this.opts.maxGradNorm / (norm + 1e-6) : 1);
      const lr = this.currentLr();
      const refused = await this.optimizer.update(params, this.accum, { lr, gradScale: coef, gradNorm: norm });
      if (refused) return this.nonFinite(new NonFiniteError(updateStep, refused, this.accumLoss, 'update'), batch, norm, t0);
      this.records.push(this.record(updateStep, this.accumLoss, lr, norm, batch, t0));
    } finally {
      tf.dispose([...this.accum.values()]);
      this.accum.clear();
      this.accumLoss = 0;
      this.accumCount = 0;
    }
  }

  private nonFinite(err: NonFiniteError, batch: Batch, norm: number, t0: number): void {
    if (this.opts.onNonFinite === 'error') throw err;
    this.records.push(this.record(err.step, this.accumLoss, NaN, norm, batch, t0));
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
      const statsT = gradStats(this.accum)!;
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

  private record(step: number, loss: number, lr: number, gradNorm: number, batch: Batch, t0: number): StepRecord {
    const ids = batch.inputIds as { shape?: number[]; length?: number };
    const tokens = ids.shape ? ids.shape[0] * ids.shape[1] : (batch.inputIds as number[][]).reduce((a, r) => a + r.length, 0);
    return { step, epoch: this.epoch, loss, lr, gradNorm, tokens: tokens * this.opts.gradAccumulation, seconds: (performance.now() - t0) / 1000 };
  }

  /**
   * Mean loss over examples (classification) or predicted tokens (causal LM,
   * so perplexity does not depend on how the tokens were batched), plus
   * accuracy, Pearson (regression) or perplexity. Labels of -100 are left
   * out; a batch may have none, but the whole set must have some.
   */
  async evaluate(batches: Batch[]): Promise<EvalResult> {
    const where = 'trainer.evaluate';
    if (!Array.isArray(batches) || batches.length === 0) {
      throw new OptionsError(where, '', `needs a non-empty array of batches, got ${describeValue(batches)} (the loss of no data would read as 0 and perplexity as 1)`);
    }
    batches.forEach((b, i) => checkBatch(`${where} (batch ${i})`, b, this.model, false));
    let lossSum = 0, n = 0;
    const preds: number[] = [], gold: number[] = [];
    const causal = this.model.task === 'causal-lm';
    for (const [i, b] of batches.entries()) {
      const [lossT, labels, pred, countT] = await this.explained(`${where} (batch ${i})`, b, false, () => tf.tidy(() => {
        const { logits, labels } = forwardForLoss(this.model, b, labelsTensor(b.labels, this.model), false);
        const pred = causal ? tf.zeros([0]) : (isRegression(this.model) ? tf.reshape(logits, [-1]) : tf.argMax(logits, -1));
        // a batch's loss is its mean over the labels that carry one: weigh it by them
        return [this.model.loss(logits, labels), labels, pred, lossLabelCount(labels, this.model)];
      }));
      const checkT = deviceBatchCheck(b, this.model);
      const both = tf.tidy(() => tf.concat([tf.stack([tf.reshape(lossT, []), countT]), ...(checkT ? [checkT] : [])]));
      try {
        const values = await both.data();
        if (checkT && !deviceCheckPassed(values.subarray(2), false)) await failDeviceCheck(`${where} (batch ${i})`, b, this.model, values.subarray(2), false);
        const [lossV, w] = values;
        if (w > 0) {
          lossSum += lossV * w;
          n += w;
        }
        if (!causal) {
          const [g, p] = await Promise.all([labels.data(), pred.data()]);
          // an ignored example has no gold class to score against
          for (let j = 0; j < g.length; j++) if (g[j] !== IGNORE_INDEX) { gold.push(g[j]); preds.push(p[j]); }
        }
      } finally {
        tf.dispose([both, countT, checkT, lossT, labels, pred]);
      }
    }
    if (n === 0) throw new BatchError(where, 'labels', `are ${IGNORE_INDEX} in every one of the ${batches.length} batches: nothing to evaluate`);
    const loss = lossSum / n;
    const metrics: Record<string, number> = {};
    if (this.model.task !== 'seq-cls') metrics.perplexity = Math.exp(loss);
    else if (isRegression(this.model)) metrics.pearson = pearson(preds, gold);
    else metrics.accuracy = accuracy(preds, gold);
    // metrics read after an uncaptured GPU error (an allocation that failed) come from buffers never made
    await assertGpuHealthy(where, 'the losses and metrics read since then are not trustworthy');
    return { loss, metrics };
  }

  /**
   * Train for some epochs, polling the stop flag between steps (the kernel's
   * interrupt button sets it). Resumes from epoch/cursor when called again.
   */
  async fit(o: FitOptions): Promise<aq.ColumnTable> {
    const where = 'trainer.fit';
    checkOptions(where, o, FIT_KEYS);
    if (o === undefined) throw new OptionsError(where, 'train', 'is missing: fit({ train: batches, epochs })');
    if (!Array.isArray(o.train) || !o.train.length) throw new OptionsError(where, 'train', `must be a non-empty array of batches, got ${describeValue(o.train)}`);
    const count = (k: 'epochs' | 'evalEvery') => {
      if (o[k] !== undefined && !(Number.isSafeInteger(o[k]) && o[k]! >= 1)) throw new OptionsError(where, k, `must be a positive integer, got ${describeValue(o[k])}`);
      return o[k];
    };
    if (o.eval !== undefined && !Array.isArray(o.eval)) throw new OptionsError(where, 'eval', `must be an array of batches, got ${describeValue(o.eval)}`);
    if (o.shuffle !== undefined && typeof o.shuffle !== 'boolean') throw new OptionsError(where, 'shuffle', `must be true or false, got ${describeValue(o.shuffle)}`);
    const epochs = count('epochs') ?? 1;
    // every batch before the first step: a bad one found in epoch 3 would waste the first two
    o.train.forEach((b, i) => checkBatch(`${where}: train[${i}]`, b, this.model, true));
    o.eval?.forEach((b, i) => checkBatch(`${where}: eval[${i}]`, b, this.model, false));
    const perEpoch = Math.ceil(o.train.length / this.opts.gradAccumulation);
    const totalSteps = this.totalSteps ?? perEpoch * epochs;
    if (this.opts.warmupSteps !== undefined) checkWarmup(where, this.opts.warmupSteps, totalSteps, this.totalSteps === undefined ? `${epochs} epochs of ${perEpoch}` : 'totalSteps');
    this.totalSteps = totalSteps;
    const evalEvery = count('evalEvery') ?? perEpoch;
    const cbs = [...this.opts.callbacks, ...Trainer.defaultCallbacks.map((f) => f())];
    clearStop();
    cbs.forEach((c) => c.onStart?.({ totalSteps }));
    let interrupted = false;
    this.startReplay();
    let failed = false;
    try {
      for (; this.epoch < epochs; this.epoch++, this.cursor = 0) {
        const order = o.shuffle === false ? o.train.map((_, i) => i) : new Rng(this.opts.seed * 7919 + this.epoch).permutation(o.train.length);
        for (; this.cursor < order.length; ) {
          if (stopRequested()) { interrupted = true; throw new TrainingInterrupted(this.updates); }
          const before = this.records.length;
          const batch = o.train[order[this.cursor]];
          await this.fitStep(batch);
          this.cursor++;
          if (this.cursor === order.length) await this.flush(batch);
          const evalDue = () => Boolean(o.eval?.length) && this.updates % evalEvery === 0;
          // a pipelined step is recorded when the next one settles it: an evaluation due now needs its record
          if (this.pending && evalDue()) await this.settlePipeline();
          const added = this.records.slice(before);
          for (const [i, rec] of added.entries()) {
            if (i === added.length - 1 && !this.pending && evalDue()) {
              const r = await this.evaluate(o.eval!);
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
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // a pipelined step still in flight is settled (recorded, or done again) before the replays end; an error of its
      // own gives way to the one already on its way out
      let settleError: unknown;
      try { await this.settlePipeline(); } catch (e) { if (!failed) settleError = e; }
      this.endReplay();
      cbs.forEach((c) => c.onEnd?.({ steps: this.updates, interrupted }));
      if (settleError !== undefined) throw settleError;
    }
    await assertGpuHealthy(where, 'the losses read since then are not trustworthy');
    return this.history;
  }

  /** every optimizer update as an arquero table (step, epoch, loss, lr, gradNorm, tokens, seconds, evalLoss, evalMetric) */
  get history(): aq.ColumnTable {
    const cols = ['step', 'epoch', 'loss', 'lr', 'gradNorm', 'tokens', 'seconds', 'evalLoss', 'evalMetric'] as const;
    const data: Record<string, Array<number | null>> = {};
    for (const c of cols) data[c] = this.records.map((r) => (r[c] ?? null) as number | null);
    return aq.table(data);
  }

  /** The state a checkpoint saves (see TrainerState); called while a step() is in flight, it waits for that step. */
  async state(): Promise<TrainerState> {
    return this.exclusive(async () => { await this.settleNow(); return this.readState(); });
  }

  private async readState(): Promise<TrainerState> {
    return {
      optimizer: { ...await this.optimizer.state(), lr: this.lastLr() },
      accum: await toHost(this.accum),
      trainer: { microStep: this.microStep, epoch: this.epoch, cursor: this.cursor, rngState: this.rng.state, accumLoss: this.accumLoss, accumCount: this.accumCount },
      // the records themselves: fit() may still set evalLoss on the last one while a save writes them
      records: [...this.records],
    };
  }

  /**
   * Go on from `state` (state() of this or another trainer of the same
   * adapter, or a checkpoint's): moments, accumulation, counters, RNG and
   * history are replaced. Waits for a step in flight.
   */
  async loadState(state: TrainerState): Promise<void> {
    return this.exclusive(async () => this.applyState(state));
  }

  private applyState(s: TrainerState): void {
    const params = this.adapter.namedParameters();
    // the accumulation is checked before the optimizer (which checks its own and then replaces them), so a mismatch leaves the trainer as it was
    checkAgainst('trainer.loadState', 'accum', s.accum, params);
    this.optimizer.loadState(s.optimizer, params, { where: 'trainer.loadState', prefix: 'optimizer.' });
    tf.dispose([...this.accum.values()]);
    this.accum.clear();
    for (const [n, t] of s.accum) this.accum.set(n, fromHost(t));
    ({ microStep: this.microStep, epoch: this.epoch, cursor: this.cursor, accumLoss: this.accumLoss, accumCount: this.accumCount } = s.trainer);
    this.rng.state = s.trainer.rngState;
    this.records.length = 0;
    for (const r of s.records) this.records.push(r);
  }

  /**
   * Write a checkpoint folder: the adapter (a PEFT folder), AdamW moments and
   * step, schedule and data position, RNG and dropout counters, and history.
   * The folder is replaced atomically (checkpoint.ts). Called while a
   * step() is in flight, it waits for that step and saves before the next.
   */
  async save(dir: string): Promise<void> {
    return this.exclusive(async () => { await this.settleNow(); await saveCheckpoint(this, await this.readState(), dir); });
  }

  /**
   * Rebuild the adapter on `model` and a trainer that continues exactly where
   * save() left off; fit() with the same data then resumes mid-epoch.
   * `opts` overrides saved options (callbacks are never saved).
   */
  static async resume(dir: string, model: Model, opts: ResumeOptions = {}): Promise<Trainer> {
    const read = await resumeCheckpoint(dir, model, opts);
    let trainer: Trainer | undefined;
    try {
      trainer = new Trainer(model, read.adapter, read.options);
      await trainer.loadState(read.state);
    } catch (e) {
      trainer?.dispose();
      read.abandon();
      throw e;
    }
    return trainer;
  }

  /**
   * @internal Let step() replay recorded steps (step-replay.ts) until
   * endReplay(): fit() does this around its loop, unless SHARELORA_WEBGPU_REPLAY=0,
   * on webgpu, without gradient accumulation; the benchmark's step loop too.
   */
  startReplay(): void {
    if (flags.webgpuReplay && tf.getBackend() === 'webgpu' && this.opts.gradAccumulation === 1) this.replayer ??= new StepReplayer(this.model, () => this.adapter.namedParameters());
  }

  /** @internal give back every buffer the replays pinned */
  endReplay(): void {
    if (this.replayer) this.lastReplay = this.replayer.summary;
    this.replayer?.end();
    this.replayer = undefined;
  }

  dispose(): void {
    this.pending?.read.catch(() => undefined);
    this.pending = undefined;
    this.endReplay();
    this.disposed = true;
    this.optimizer.dispose();
    tf.dispose([...this.accum.values()]);
    this.accum.clear();
    this.accumLoss = 0;
    this.accumCount = 0;
  }
}

/** [n, 2]: each gradient's Σg² and all-finite flag, still on the device */
function gradStats(grads: Map<string, tf.Tensor>): tf.Tensor | undefined {
  if (!grads.size) return undefined;
  return tf.tidy(() => gradStatsMany([...grads.values()]));
}
