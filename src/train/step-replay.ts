/**
 * The trainer's side of step replay (src/backend/webgpu/replay.ts; on by
 * default, SHARELORA_WEBGPU_REPLAY=0 turns it off). Inside fit() on webgpu, without gradient
 * accumulation, each batch shape goes through:
 *   warm-up (2 normal steps: pipelines compiled, frozen-weight copies made),
 *   recording (normal steps, recorded, until two in a row are the same step),
 *   verification (the replay and a normal step on the same batch must read
 *     back the same loss and gradient statistics),
 *   replay (no tfjs op until the AdamW update, which stays the normal path).
 * A shape whose steps never repeat (dropout, a host decision) or whose replay
 * fails verification goes on the normal path, with the reason in replayStats.
 * fit() ends every replay when it returns, so no buffer stays pinned.
 * A recording sees every command of the process: while two fits run at once
 * nothing is recorded (a plain trainer.step() loop interleaved with a fit is
 * not detected; the verification step is what would catch it).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/types.js';
import { abortRecording, beginRecording, StepReplay, type Recording, type SubmittedReplay } from '../backend/webgpu/replay.js';
import { toHeadRows, toInt2D, type Batch } from '../data/batch.js';
import { labelsTensor } from './loss.js';

/** one forward/backward/statistics pass as the trainer consumes it */
export interface StepPass {
  /** the one read: loss, the batch's device check (nCheck values), each gradient's Σg² and finite flag */
  values: Float32Array;
  nCheck: number;
  /** the gradients, owned by the caller */
  next: Map<string, tf.Tensor>;
}

/** counts since the process started (bench/worker.ts reports them) */
export const replayStats = { recorded: 0, built: 0, verified: 0, replayed: 0, refused: {} as Record<string, number> };

/** @internal the benchmark on Dawn's null device, whose reads are garbage, turns the verification off (host time only) */
export const replaySettings = { verify: true };

const WARMUP = 2;
/** recordings of one shape that may differ from the one before before the shape is given up */
const MAX_MISMATCH = 3;
/** replays kept alive per trainer (each pins one step's buffers) */
const MAX_LIVE = 2;

/**
 * StepReplayers alive in this process. A recording keeps every command Dawn
 * sees, so another trainer's steps interleaved with it (two fits awaited
 * together) would be recorded, and replayed, as this one's: while more than
 * one is alive nothing is recorded.
 */
let alive = 0;

interface ShapeState { seen: number; last?: Recording; replay?: StepReplay; verified: boolean; mismatches: number; refused?: string; nCheck: number; used: number }

/** what one fit()'s replays did (Trainer.lastReplay) */
export interface ReplaySummary {
  /** steps that went through pass() */
  steps: number;
  /** of those, replayed without tfjs */
  replayed: number;
  /** batch shapes sent back to the normal path, by reason */
  refused: Record<string, number>;
  /** of the replayed steps, those submitted without waiting for their read (SHARELORA_WEBGPU_PIPELINE) */
  pipelined: number;
}

export class StepReplayer {
  private readonly shapes = new Map<string, ShapeState>();
  readonly summary: ReplaySummary = { steps: 0, replayed: 0, refused: {}, pipelined: 0 };
  private tick = 0;

  private ended = false;

  constructor(private readonly model: Model, private readonly params: () => Map<string, tf.Variable>) { alive++; }

  /**
   * One step's pass: `normal(fwd, check)` is the trainer's own pass over the
   * batch as tensors (`fwd`) with the device check of `check` (the batch's
   * own tensor parts).
   */
  async pass(batch: Batch, normal: (fwd: Batch, check: Batch) => Promise<StepPass>): Promise<StepPass> {
    const conv = this.convert(batch);
    this.summary.steps++;
    try {
      let st = this.shapes.get(conv.key);
      if (!st) this.shapes.set(conv.key, st = { seen: 0, verified: false, mismatches: 0, nCheck: 0, used: 0 });
      this.visit(st);
      if (st.replay?.ended && !st.refused) this.refuse(st, `replay ended: ${st.replay.ended}`);
      if (st.refused || st.seen <= WARMUP) return await normal(conv.fwd, conv.check);
      if (st.replay) return st.verified ? await this.replayed(st, conv.dynamic) : await this.verify(st, conv, normal);
      if (alive > 1) return await normal(conv.fwd, conv.check);
      return await this.record(st, conv, normal);
    } finally {
      conv.dispose();
    }
  }

  /**
   * A pipelined step's pass (the trainer, SHARELORA_WEBGPU_PIPELINE): where
   * this batch shape's replay is built and verified, submit it without
   * waiting for its read; undefined otherwise (then take pass(), which also
   * warms up, records and verifies). The caller settles each read before
   * the one after next is submitted.
   */
  submit(batch: Batch): (SubmittedReplay & { nCheck: number }) | undefined {
    const conv = this.convert(batch);
    try {
      const st = this.shapes.get(conv.key);
      if (!st?.replay || !st.verified || st.refused || st.replay.ended || !st.replay.pipelinable) return undefined;
      this.visit(st);
      this.summary.steps++;
      const r = st.replay.submit(conv.dynamic);
      this.countReplayed();
      this.summary.pipelined++;
      return { ...r, nCheck: st.nCheck };
    } finally {
      // the inputs were copied by the submitted commands, ahead of any later reuse of these buffers
      conv.dispose();
    }
  }

  private async replayed(st: ShapeState, dynamic: Map<string, tf.TensorInfo>): Promise<StepPass> {
    const r = await st.replay!.run(dynamic);
    this.countReplayed();
    return { values: r.values, nCheck: st.nCheck, next: r.outputs };
  }

  /** a step of this batch shape: counted for the warm-up, and most recently used (makeRoom) */
  private visit(st: ShapeState): void {
    st.seen++;
    st.used = ++this.tick;
  }

  private countReplayed(): void {
    replayStats.replayed++;
    this.summary.replayed++;
  }

  private async verify(st: ShapeState, conv: Converted, normal: (fwd: Batch, check: Batch) => Promise<StepPass>): Promise<StepPass> {
    const r = await st.replay!.run(conv.dynamic);
    tf.dispose([...r.outputs.values()]);
    const n = await normal(conv.fwd, conv.check);
    const bad = replaySettings.verify ? differs(r.values, n.values) : undefined;
    if (bad) { this.refuse(st, `verification: ${bad}`); st.replay!.end('verification failed'); }
    else { st.verified = true; replayStats.verified++; }
    return n;
  }

  private async record(st: ShapeState, conv: Converted, normal: (fwd: Batch, check: Batch) => Promise<StepPass>): Promise<StepPass> {
    const stop = beginRecording(conv.dynamic);
    let n: StepPass;
    try {
      n = await normal(conv.fwd, conv.check);
    } catch (e) {
      abortRecording();
      throw e;
    }
    const rec = stop();
    replayStats.recorded++;
    if (rec.problems.length) { this.refuse(st, rec.problems[0]); return n; }
    if (st.last?.canon !== rec.canon) {
      if (st.last && ++st.mismatches >= MAX_MISMATCH) this.refuse(st, 'consecutive steps differ (dropout, or a decision made on the host)');
      st.last = rec;
      return n;
    }
    st.last = undefined;
    this.makeRoom();
    try {
      st.replay = new StepReplay(rec, n.next);
      st.nCheck = n.nCheck;
      replayStats.built++;
    } catch (e) {
      this.refuse(st, (e as Error).message);
    }
    return n;
  }

  /** at most MAX_LIVE replays pin their buffers: the least recently used shape's goes */
  private makeRoom(): void {
    const held = [...this.shapes.values()].filter((s) => s.replay && !s.replay.ended).sort((a, b) => a.used - b.used);
    while (held.length >= MAX_LIVE) {
      const s = held.shift()!;
      s.replay!.end('another batch shape needed the room');
      s.replay = undefined;
      s.verified = false;
      s.seen = WARMUP;
    }
  }

  private refuse(st: ShapeState, why: string): void {
    st.refused = why;
    st.last = undefined;
    replayStats.refused[why] = (replayStats.refused[why] ?? 0) + 1;
    this.summary.refused[why] = (this.summary.refused[why] ?? 0) + 1;
  }

  /** the batch as tensors, the inputs a replay takes, and the shape key */
  private convert(batch: Batch): Converted {
    const made: tf.Tensor[] = [];
    const keep = <T extends tf.Tensor>(t: T): T => { made.push(t); return t; };
    const fwd: Batch = {
      inputIds: keep(toInt2D(batch.inputIds, 'inputIds')),
      attentionMask: batch.attentionMask === undefined ? undefined : keep(toInt2D(batch.attentionMask, 'attentionMask')),
      labels: keep(labelsTensor(batch.labels, this.model)),
      ...(batch.headRows === undefined ? {} : { headRows: batch.headRows instanceof tf.Tensor ? batch.headRows : keep(toHeadRows(batch.headRows)) }),
    };
    // the device check reads the batch's own tensors, as the normal step does
    const pick = <K extends keyof Batch>(k: K) => (batch[k] instanceof tf.Tensor ? batch[k] : fwd[k]);
    const check = (['inputIds', 'attentionMask', 'labels'] as const).some((k) => batch[k] instanceof tf.Tensor)
      ? { inputIds: pick('inputIds'), attentionMask: pick('attentionMask'), labels: pick('labels') } as Batch
      : batch;
    const dynamic = new Map<string, tf.TensorInfo>();
    const parts: string[] = [];
    for (const k of ['inputIds', 'attentionMask', 'labels'] as const) {
      const f = fwd[k] as tf.Tensor | undefined, c = check[k];
      if (f) { dynamic.set(k, f); parts.push(`${k}:${f.dtype}[${f.shape}]`); }
      if (c instanceof tf.Tensor && c !== f) { dynamic.set(`check.${k}`, c); parts.push(`check.${k}:${c.dtype}[${c.shape}]`); }
    }
    // the masked LM's head rows: a forward input only (the host check has seen them)
    const rows = fwd.headRows as tf.Tensor | undefined;
    if (rows) { dynamic.set('headRows', rows); parts.push(`headRows:${rows.dtype}[${rows.shape}]`); }
    for (const [name, v] of this.params()) { dynamic.set(`param.${name}`, v); parts.push(`${name}[${v.shape}]`); }
    return { fwd, check, dynamic, key: parts.join(' '), dispose: () => tf.dispose(made) };
  }

  /** end every replay (fit() returns; the trainer is disposed) */
  end(): void {
    for (const s of this.shapes.values()) s.replay?.end('fit() returned');
    this.shapes.clear();
    if (!this.ended) { this.ended = true; alive--; }
  }
}

interface Converted { fwd: Batch; check: Batch; dynamic: Map<string, tf.TensorInfo>; key: string; dispose(): void }

/** why two reads differ beyond float32 reduction noise, or undefined */
function differs(a: Float32Array, b: Float32Array): string | undefined {
  if (a.length !== b.length) return `${a.length} values read against ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    if (!(Math.abs(a[i] - b[i]) <= 1e-5 * Math.max(1, Math.abs(a[i]), Math.abs(b[i])))) return `value ${i}: replay ${a[i]}, normal step ${b[i]}`;
  }
  return undefined;
}
