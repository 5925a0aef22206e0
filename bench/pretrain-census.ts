/**
 * A census of one full-training step of the pretraining models (scripts/pretrain/run.ts `trainRun`: a
 * random-initialised model, `fullFineTune`, `Trainer` with the pretraining recipe, step replay started):
 * every GPU command a step records, by kernel and by part of the step. Counts, not times: it runs on
 * lavapipe here, or on Dawn's null device at the full batch ("dawnFlags": ["backend=null"], nothing computed,
 * so the GEMM tile and split-K choices of the full shape are the ones seen; SHARELORA_GPU_SMS sets the SM count
 * they assume, 132 by default).
 *
 *   [SHARELORA_WEBGPU_REPLAY=0] [SHARELORA_WEBGPU_MULTI_TENSOR=1] \
 *     node dist/bench/pretrain-census.js '{"kind":"causal","preset":"d256-l12","batch":2,"seq":256}'
 *
 * Spec keys (an unknown one is an error): kind ('causal' | 'mlm'), preset (scripts/pretrain/run.ts PRESETS),
 * batch, seq (≤ the preset's positions), merges (vocabulary 256 + merges + 1; default 8000), warmup (steps
 * before the counted ones; default 6: replay warms up 2, records 2, verifies 1), steps (counted; default 2),
 * dawnFlags, sequence (true: also one step's dispatches in order, run-length coded), out (a JSON file),
 * planTokens (the products of the step again with every token dimension at this many tokens, e.g. 16384 for
 * 64 × 256, and the tile, K-split and workgroups the library's GEMM would choose for them: `plan` below
 * repeats webgpu/gemm.ts's choice, and is checked against the kernels seen at the census shape). Products are
 * seen only in a step that runs through tfjs: with SHARELORA_WEBGPU_REPLAY=0 (a replayed step has no ops).
 *
 * Parts of a step: prologue (the batch to tensors, inputs uploaded), forward (embedding to the last norm),
 * loss (LM head and cross-entropy), backward, stats (the device check, each gradient's Σg² and finite flag, the
 * one read), replay (a replayed step's one command buffer: forward, loss, backward and stats together), adamw
 * (the update). Forward and backward are cut into segments at each LayerNorm (forward) or LayerNorm backward, so
 * a block's two norms make two segments. Prints one `@@RESULT {json}` line and the tables.
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { flags } from '../src/backend/flags.js';
import { StepReplay } from '../src/backend/webgpu/replay.js';
import { fullFineTune } from '../src/adapters/full.js';
import { collateMaskedLM } from '../src/data/collate.js';
import { randomModel } from '../src/models/init.js';
import { Trainer } from '../src/train/trainer.js';
import { replaySettings } from '../src/train/step-replay.js';
import { checkOptions, optionKeys } from '../src/util/options.js';
import { chooseTile, splitChoice } from '../src/backend/webgpu/gemm.js';
import { THIN_MAX, thinSplits } from '../src/backend/webgpu/thin.js';
import { modelConfig, preset } from '../scripts/pretrain/run.js';

export interface CensusSpec {
  kind: 'causal' | 'mlm';
  preset: string;
  batch: number;
  seq: number;
  merges?: number;
  warmup?: number;
  steps?: number;
  dawnFlags?: string[];
  sequence?: boolean;
  out?: string;
  planTokens?: number;
}
const SPEC_KEYS = optionKeys<CensusSpec>()(['kind', 'preset', 'batch', 'seq', 'merges', 'warmup', 'steps', 'dawnFlags', 'sequence', 'out', 'planTokens']);

/** one matrix product of a step: its part, op, dimensions and the kernels it dispatched */
interface Product { part: string; op: string; batch: number; M: number; N: number; K: number; tA: boolean; tB: boolean; bias: boolean; kernels: string[] }

/**
 * The kernel webgpu/gemm.ts's gemm() picks for a plain product (no forced tile, no tile rule, not strided):
 * the thin kernel (a side ≤ 8) and its K-splits (repeated here from gemm()), else chooseTile's tile and gemm.ts's
 * own splitChoice; the census checks it against the kernels the products dispatched.
 */
export function plan(M: number, N: number, K: number, batch: number, bias: boolean): { kernel: string; tile: string; S: number; workgroups: number } {
  if (batch === 1 && !bias && Math.min(M, N) <= THIN_MAX && Math.max(M, N) >= 64 && K >= 64) {
    const groups = Math.ceil(Math.max(M, N) / 16), S = thinSplits(groups, K);
    return { kernel: `thin_gemm${S > 1 ? '_split' : ''}`, tile: 'thin', S, workgroups: groups * S };
  }
  const { t, S } = batch === 1 ? splitChoice(M, N, K, chooseTile(M, N, batch, K)) : { t: chooseTile(M, N, batch, K), S: 1 };
  return { kernel: `gemm_${t.BM}x${t.BN}${S > 1 ? '_sk' : ''}`, tile: `${t.BM}x${t.BN}`, S, workgroups: Math.ceil(M / t.BM) * Math.ceil(N / t.BN) * S * batch };
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** one step's commands */
interface StepCount {
  dispatches: number;
  /** `${part}\t${kernel}` -> dispatches */
  byPart: Map<string, number>;
  /** `${part}\t${segment}` -> dispatches */
  bySegment: Map<string, number>;
  /** kernel -> dispatches */
  byKernel: Map<string, number>;
  /** top-level engine ops by name */
  engineOps: Map<string, number>;
  /** `${part} ${op} M×N×K tAtB -> kernels` -> count */
  gemms: Map<string, number>;
  products: Product[];
  copies: number; clears: number; passes: number; submits: number; writeBuffers: number; reads: number;
  sequence: string[];
}

const newStep = (): StepCount => ({
  dispatches: 0, byPart: new Map(), bySegment: new Map(), byKernel: new Map(), engineOps: new Map(), gemms: new Map(), products: [],
  copies: 0, clears: 0, passes: 0, submits: 0, writeBuffers: 0, reads: 0, sequence: [],
});
const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

const NORM_FWD = new Set(['ShareLoraNorm', 'ShareLoraAddNorm']);
const NORM_BWD = new Set(['ShareLoraNormGrad', 'ShareLoraAddNormGrad']);

function wrap(proto: Any, name: string, make: (orig: (...a: Any[]) => Any) => (this: Any, ...a: Any[]) => Any): void {
  const orig = proto[name];
  if (typeof orig !== 'function') throw new Error(`census: ${name} is not a function`);
  proto[name] = make(orig);
}

export async function census(spec: CensusSpec): Promise<Record<string, unknown>> {
  checkOptions('pretrain-census spec', spec, SPEC_KEYS);
  if (spec.kind !== 'causal' && spec.kind !== 'mlm') throw new Error(`pretrain-census: kind must be "causal" or "mlm", got ${JSON.stringify(spec.kind)}`);
  for (const k of ['batch', 'seq'] as const) if (!Number.isSafeInteger(spec[k]) || spec[k] < 1) throw new Error(`pretrain-census: ${k} must be a positive integer, got ${JSON.stringify(spec[k])}`);
  const warmup = spec.warmup ?? 6, steps = spec.steps ?? 2, merges = spec.merges ?? 8000;
  const p = preset(spec.preset);
  if (spec.seq > p.positions) throw new Error(`pretrain-census: seq ${spec.seq} is more than preset ${spec.preset}'s ${p.positions} positions`);
  const nullGpu = !!spec.dawnFlags?.includes('backend=null');
  if (spec.dawnFlags?.length) {
    const webgpu = await import('webgpu') as unknown as { create(f: string[]): unknown; globals: object };
    Object.assign(globalThis, webgpu.globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create(spec.dawnFlags) }, configurable: true, writable: true });
  }
  const info = await useBackend('webgpu');
  const be = tf.backend() as Any;
  const dev = be.device as GPUDevice;

  // ---- instrumentation: pipelines named by their label (ours: the kernel key) or by the tfjs program and op that made them
  const label = new WeakMap<object, string>();
  const pipeName = new WeakMap<object, string>();
  const passPipe = new WeakMap<object, object>();
  const opStack: string[] = [];
  let program: string | undefined;
  let part = 'setup';
  let segment = 0;
  let cur: StepCount | undefined;
  let gemmNames: string[] | undefined;
  const setPart = (p: string) => { part = p; segment = 0; };
  const devProto = Object.getPrototypeOf(dev);
  wrap(devProto, 'createComputePipeline', (orig) => function (this: Any, d: Any) { const pl = orig.call(this, d); if (d?.label) label.set(pl, d.label); return pl; });
  wrap(devProto, 'createComputePipelineAsync', (orig) => function (this: Any, d: Any) {
    return orig.call(this, d).then((pl: Any) => { if (d?.label) label.set(pl, d.label); return pl; });
  });
  const enc = dev.createCommandEncoder();
  const encProto = Object.getPrototypeOf(enc);
  const pass = enc.beginComputePass({});
  const passProto = Object.getPrototypeOf(pass);
  pass.end();
  enc.finish();
  wrap(passProto, 'setPipeline', (orig) => function (this: Any, pl: Any) {
    passPipe.set(this, pl);
    if (!pipeName.has(pl)) pipeName.set(pl, program ? `tfjs ${program}` : `ours ${label.get(pl) ?? pl.label ?? '?'}`);
    return orig.call(this, pl);
  });
  wrap(passProto, 'dispatchWorkgroups', (orig) => function (this: Any, ...a: Any[]) {
    if (cur) {
      const pl = passPipe.get(this);
      const name = (pl && pipeName.get(pl)) ?? '?';
      cur.dispatches++;
      bump(cur.byPart, `${part}\t${name}`);
      bump(cur.byKernel, name);
      bump(cur.bySegment, `${part}\t${segment}`);
      if (spec.sequence) cur.sequence.push(`${part}/${segment} ${name}`);
      gemmNames?.push(name.replace(/^ours /, ''));
    }
    return orig.apply(this, a);
  });
  wrap(encProto, 'copyBufferToBuffer', (orig) => function (this: Any, ...a: Any[]) { if (cur) cur.copies++; return orig.apply(this, a); });
  wrap(encProto, 'clearBuffer', (orig) => function (this: Any, ...a: Any[]) { if (cur) cur.clears++; return orig.apply(this, a); });
  wrap(encProto, 'beginComputePass', (orig) => function (this: Any, ...a: Any[]) { if (cur) cur.passes++; return orig.apply(this, a); });
  wrap(Object.getPrototypeOf(be.queue), 'submit', (orig) => function (this: Any, ...a: Any[]) { if (cur) cur.submits++; return orig.apply(this, a); });
  wrap(Object.getPrototypeOf(be.queue), 'writeBuffer', (orig) => function (this: Any, ...a: Any[]) { if (cur) cur.writeBuffers++; return orig.apply(this, a); });
  const probe = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  wrap(Object.getPrototypeOf(probe), 'mapAsync', (orig) => function (this: Any, ...a: Any[]) { if (cur && (this.usage & GPUBufferUsage.MAP_READ)) cur.reads++; return orig.apply(this, a); });
  probe.destroy();
  const runProgram = be.runWebGPUProgram;
  be.runWebGPUProgram = function (this: Any, prog: Any, ...a: Any[]) {
    const was = program;
    program = `${opStack[opStack.length - 1] ?? '(no op)'}:${prog?.constructor?.name ?? 'program'}`;
    try { return runProgram.call(this, prog, ...a); } finally { program = was; }
  };
  const eng = tf.engine() as Any;
  const runKernel = eng.runKernel;
  eng.runKernel = function (this: Any, name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>) {
    if (cur && !opStack.length) bump(cur.engineOps, name);
    if (part === 'forward' && NORM_FWD.has(name)) segment++;
    if (part === 'backward' && NORM_BWD.has(name)) segment++;
    const gemm = cur && (name === 'ShareLoraMatMul' || name === 'BatchMatMul') && !gemmNames;
    let sig = '';
    let prod: Product | undefined;
    if (gemm) {
      const { a, b } = inputs;
      const tA = !!(attrs?.transA ?? attrs?.transposeA), tB = !!(attrs?.transB ?? attrs?.transposeB);
      const ra = a.shape.length, rb = b.shape.length;
      const M = tA ? a.shape[ra - 1] : a.shape[ra - 2], K = tA ? a.shape[ra - 2] : a.shape[ra - 1], N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
      const batch = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const bias = !!inputs.bias;
      sig = `${part} ${name === 'BatchMatMul' ? 'tf.matMul' : 'mm'} ${batch > 1 ? `${batch}× ` : ''}${M}×${N}×${K} ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}${bias ? ' +bias' : ''}`;
      prod = { part, op: name === 'BatchMatMul' ? 'tf.matMul' : 'mm', batch, M, N, K, tA, tB, bias, kernels: [] };
      gemmNames = prod.kernels;
    }
    opStack.push(name);
    try { return runKernel.call(this, name, inputs, attrs); } finally {
      opStack.pop();
      if (gemm) { bump(cur!.gemms, `${sig} -> ${gemmNames!.join(' + ')}`); cur!.products.push(prod!); gemmNames = undefined; }
    }
  };
  const gradients = eng.gradients;
  eng.gradients = function (this: Any, f: () => tf.Tensor, ...a: Any[]) {
    const r = gradients.call(this, () => { setPart('forward'); const y = f(); setPart('backward'); return y; }, ...a);
    setPart('stats');
    return r;
  };
  wrap(StepReplay.prototype, 'submit', (orig) => function (this: Any, ...a: Any[]) {
    const was = part;
    setPart('replay');
    try { return orig.apply(this, a); } finally { setPart(was); }
  });

  // ---- the model, the trainer and the batches of trainRun
  const config = modelConfig(spec.kind, p, { merges });
  const model = randomModel(config, { seed: 0, task: spec.kind === 'causal' ? 'causal-lm' : 'masked-lm' });
  const fwd = model.forward.bind(model);
  model.forward = (x) => { const y = fwd(x); setPart('loss'); return y; };
  const ft = fullFineTune(model);
  const trainer = new Trainer(model, ft, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1, schedule: 'cosine', warmupSteps: 200, totalSteps: 4000, seed: 0 });
  if (nullGpu) {
    // the null device's reads are garbage: take the statistics as finite, skip the replay's verification (host counts only)
    (trainer as unknown as { globalNorm: () => Promise<{ norm: number }> }).globalNorm = async () => ({ norm: 1 });
    replaySettings.verify = false;
  }
  const update = trainer.optimizer.update.bind(trainer.optimizer);
  trainer.optimizer.update = async (...a: Parameters<typeof update>) => { setPart('adamw'); try { return await update(...a); } finally { setPart('after'); } };
  const V = model.config.vocabSize;
  const batchOf = (step: number) => {
    let s = (step + 1) * 7919;
    const rnd = (k: number) => { s = (s * 1103515245 + 12345) >>> 0; return s % k; };
    if (spec.kind === 'causal') {
      const rows = Array.from({ length: spec.batch }, () => Array.from({ length: spec.seq }, () => rnd(V - 1)));
      return { inputIds: rows, labels: rows };
    }
    // scripts/pretrain/cli.ts mlmBatch: <s> tokens </s>, dynamic masking (15%), <mask> the last id
    const rows = Array.from({ length: spec.batch }, () => [0, ...Array.from({ length: spec.seq - 2 }, () => 4 + rnd(V - 5)), 2]);
    // and its headRows: the head on the masked rows, padded to a count set by the shape (bench/NOTES.md entry 26)
    const b = collateMaskedLM(rows, { maskId: V - 1, vocabSize: V, specialIds: [0, 1, 2, 3], padId: 1, seed: step + 1, headRows: true });
    return { inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels as number[][], ...(b.headRows ? { headRows: b.headRows as Int32Array } : {}) };
  };

  const counted: StepCount[] = [];
  const totals: number[] = [];
  const t0 = performance.now();
  trainer.startReplay();
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const batch = batchOf(i);
      cur = newStep();
      setPart('prologue');
      await trainer.step(batch);
      setPart('idle');
      totals.push(cur.dispatches);
      if (i >= warmup) counted.push(cur);
      cur = undefined;
      process.stderr.write(`# step ${i + 1}/${warmup + steps}: ${totals[i]} dispatches (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  } finally {
    trainer.endReplay();
  }
  const last = counted[counted.length - 1]!;
  const sorted = (m: Map<string, number>) => [...m].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  const parts: Record<string, Record<string, number>> = {};
  for (const [k, n] of sorted(last.byPart)) { const [pt, name] = k.split('\t'); (parts[pt!] ??= {})[name!] = n; }
  const segments: Record<string, number[]> = {};
  for (const [k, n] of last.bySegment) { const [pt, sg] = k.split('\t'); (segments[pt!] ??= [])[Number(sg)] = n; }
  for (const v of Object.values(segments)) for (let i = 0; i < v.length; i++) v[i] ??= 0;
  const res: Record<string, unknown> = {
    ok: true, device: info.device, spec, vocab: V, parameters: model.baseParameterCount(), parameterTensors: ft.namedParameters().size,
    switches: { replay: flags.webgpuReplay, multiTensor: flags.webgpuMultiTensor, fusedLN: flags.webgpuFusedLN, flatStream: flags.webgpuFlatStream, flashBackward: flags.webgpuFlashBackward, splitK: flags.gemmSplitK, gpuSms: flags.gpuSms },
    lastReplay: trainer.lastReplay,
    dispatchesPerStep: totals,
    steady: {
      dispatches: last.dispatches, copies: last.copies, clears: last.clears, computePasses: last.passes, submits: last.submits, writeBuffers: last.writeBuffers, reads: last.reads,
      ourDispatches: [...last.byKernel].filter(([k]) => k.startsWith('ours ')).reduce((a, [, n]) => a + n, 0),
      tfjsDispatches: [...last.byKernel].filter(([k]) => k.startsWith('tfjs ')).reduce((a, [, n]) => a + n, 0),
      byPart: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Object.values(v).reduce((a, b) => a + b, 0)])),
    },
    byKernel: Object.fromEntries(sorted(last.byKernel)),
    parts,
    segments,
    engineOps: Object.fromEntries(sorted(last.engineOps)),
    gemms: Object.fromEntries(sorted(last.gemms)),
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
  };
  // the plan checked where the census saw the products: same tile (and split-K or thin kernel) as dispatched
  const mismatches: string[] = [];
  for (const q of last.products) {
    const c = plan(q.M, q.N, q.K, q.batch, q.bias);
    const k = q.kernels[0] ?? '';
    const ok = c.tile === 'thin' ? k.startsWith('thin_gemm') && (c.S > 1) === k.endsWith('_split')
      : k.startsWith(`gemm_${c.tile}x`) && (c.S > 1) === /_sk$/.test(k);
    if (!ok) mismatches.push(`${q.M}×${q.N}×${q.K}: plan ${c.kernel} (S ${c.S}), dispatched ${q.kernels.join(' + ')}`);
  }
  res.planCheck = { products: last.products.length, mismatches };
  if (spec.planTokens) {
    // the same products with every token dimension (batch × seq) at planTokens: what the full batch runs
    const n = spec.batch * spec.seq, to = spec.planTokens;
    const rows = new Map<string, { count: number; gflop: number; M: number; N: number; K: number; kernel: string; S: number; workgroups: number }>();
    for (const q of last.products) {
      const [M, N, K] = [q.M, q.N, q.K].map((d) => (d === n ? to : d));
      const c = plan(M, N, K, q.batch, q.bias);
      const key = `${q.part} ${q.op} ${M}×${N}×${K} ${q.tA ? 'T' : 'N'}${q.tB ? 'T' : 'N'}${q.bias ? ' +bias' : ''}`;
      const r = rows.get(key) ?? { count: 0, gflop: (2 * M * N * K * q.batch) / 1e9, M, N, K, kernel: c.kernel, S: c.S, workgroups: c.workgroups };
      r.count++;
      rows.set(key, r);
    }
    res.plan = { tokens: to, sms: flags.gpuSms, rows: Object.fromEntries([...rows].sort((x, y) => y[1].gflop * y[1].count - x[1].gflop * x[1].count)) };
  }
  if (spec.sequence) {
    // run-length coded: "part/segment kernel ×n"
    const rl: string[] = [];
    let prev = '', n = 0;
    for (const s of [...last.sequence, '']) {
      if (s === prev) { n++; continue; }
      if (prev) rl.push(n > 1 ? `${prev} ×${n}` : prev);
      prev = s; n = 1;
    }
    res.sequence = rl;
  }
  model.dispose();
  return res;
}

function print(r: Record<string, unknown>): void {
  const s = r.steady as Record<string, unknown>;
  const out: string[] = [];
  const spec = r.spec as CensusSpec;
  out.push(`# ${spec.kind} ${spec.preset} batch ${spec.batch} x ${spec.seq} on ${r.device}; switches ${JSON.stringify(r.switches)}`);
  out.push(`# replay: ${JSON.stringify(r.lastReplay)}; dispatches each step: ${JSON.stringify(r.dispatchesPerStep)}`);
  out.push(`# steady step: ${s.dispatches} dispatches (ours ${s.ourDispatches}, tfjs ${s.tfjsDispatches}), ${s.copies} copies, ${s.clears} clears, ${s.computePasses} compute passes, ${s.submits} submits, ${s.writeBuffers} queue writes, ${s.reads} reads`);
  out.push(`# by part: ${JSON.stringify(s.byPart)}`);
  for (const [pt, ks] of Object.entries(r.parts as Record<string, Record<string, number>>)) {
    out.push(`## ${pt}`);
    for (const [k, n] of Object.entries(ks)) out.push(`  ${String(n).padStart(5)}  ${k}`);
  }
  out.push(`## dispatches per segment (cut at each norm): ${JSON.stringify(r.segments)}`);
  out.push('## products (part, op, M×N×K, layouts -> kernels), per step');
  for (const [k, n] of Object.entries(r.gemms as Record<string, number>)) out.push(`  ${String(n).padStart(5)}  ${k}`);
  const pc = r.planCheck as { products: number; mismatches: string[] };
  out.push(`## gemm.ts's choice repeated (plan) for the ${pc.products} products seen: ${pc.mismatches.length ? `MISMATCHES ${JSON.stringify(pc.mismatches)}` : 'every one matches the kernel dispatched'}`);
  const pl = r.plan as { tokens: number; sms: number; rows: Record<string, { count: number; gflop: number; kernel: string; S: number; workgroups: number }> } | undefined;
  if (pl) {
    out.push(`## the same products at ${pl.tokens} tokens (GEMM choice for ${pl.sms} SMs): count × GFLOP each, kernel, K-splits, workgroups`);
    for (const [k, v] of Object.entries(pl.rows)) out.push(`  ${String(v.count).padStart(3)} × ${v.gflop.toFixed(2).padStart(6)} GFLOP  ${v.kernel.padEnd(16)} S=${String(v.S).padEnd(3)} ${String(v.workgroups).padStart(6)} wg  ${k}`);
  }
  out.push(`## top-level engine ops: ${Object.entries(r.engineOps as Record<string, number>).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (r.sequence) out.push('## one step in order', ...(r.sequence as string[]).map((x) => `  ${x}`));
  console.log(out.join('\n'));
}

if (process.argv[1] && /pretrain-census\.js$/.test(process.argv[1])) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as CensusSpec;
  census(spec).then((r) => {
    print(r);
    if (spec.out) writeFileSync(spec.out, `${JSON.stringify(r, null, 1)}\n`);
    process.stdout.write(`@@RESULT ${JSON.stringify({ ok: true, dispatchesPerStep: r.dispatchesPerStep, steady: r.steady, lastReplay: r.lastReplay })}\n`);
    process.exit(0);
  }, (e) => {
    process.stdout.write(`@@RESULT ${JSON.stringify({ ok: false, error: String(e?.stack ?? e) })}\n`);
    process.exit(1);
  });
}
