/**
 * One benchmark configuration in its own process (so each variant's GPU
 * buffer pool and peak memory start from nothing): build the model with the
 * library, inject the adapter, train a few steps, print one JSON line.
 *   node dist/bench/worker.js '<spec json>'
 */
import * as tf from '@tensorflow/tfjs-core';
import { collateMaskedLM, fullFineTune, injectShareLoRA, randomModel, Trainer, useBackend, type Model, type ShareLoraOptions } from '../src/index.js';
import { parseConfig } from '../src/models/config.js';
import { GPT2 } from '../src/models/gpt2.js';
import { Llama } from '../src/models/llama.js';
import type { RawTensor } from '../src/models/safetensors.js';
import { WeightStore } from '../src/models/weights.js';
import { registerGemmVariants } from './gemm-variants.js';
import { replaySettings, replayStats } from '../src/train/step-replay.js';
import { flags } from '../src/backend/flags.js';
import { checkOptions, optionKeys } from '../src/util/options.js';

export interface WorkerSpec {
  backend: 'webgpu' | 'wasm' | 'cpu';
  config: Record<string, unknown>;
  batch: number;
  seq: number;
  /**
   * 'lora' / 'sharea': an adapter of rank r on `targets` (both required), AdamW(lr 1e-4, wd 0.01), no clipping (unless `clip`);
   * 'full': every parameter trained, no adapter (scripts/pretrain/run.ts trainRun's fullFineTune and recipe:
   * AdamW(lr 1e-3, betas 0.9/0.95, wd 0.1), global-norm clip 1, cosine schedule); r, alpha, targets not taken
   */
  variant: 'lora' | 'sharea' | 'full';
  /**
   * the adapters' global-norm clip (Trainer maxGradNorm; torch_bench.py's clip_grad_norm_ with the same bound): what fit()'s
   * pipelined step needs (SHARELORA_WEBGPU_PIPELINE), and HF Trainer's default of 1. 'full' always clips at 1.
   */
  clip?: number;
  r?: number;
  alpha?: number;
  targets?: string[];
  steps: number;
  warmup: number;
  /** 'library': randomModel (HF init); 'tiled': a 1M-sample random block repeated, for models too big to draw sample by sample */
  init?: 'library' | 'tiled';
  profile?: boolean;
  /** only check that one step fits (max-model search) */
  fitOnly?: boolean;
  /** flags for Dawn's create() */
  dawnFlags?: string[];
  /**
   * a RoBERTa config (a masked LM): its batch is <s> ids </s> rows masked at 15% by collateMaskedLM, as host
   * arrays as pretraining passes them; true: with headRows (the head on the masked rows, bench/NOTES.md entry 26)
   */
  headRows?: boolean;
  /**
   * more injectShareLoRA options for 'lora' / 'sharea' (checked there): the neighbours' steps, e.g. { "method": "vera" }
   * or { "method": "tied-lora", "tiedTrain": "VBUA" }; with a method other than lora or lora-fa, `variant` is 'lora' and
   * `share` is not passed (VeRA and Tied-LoRA tie by construction)
   */
  adapter?: Record<string, unknown>;
}
const SPEC_KEYS = optionKeys<WorkerSpec>()(['backend', 'config', 'batch', 'seq', 'variant', 'clip', 'r', 'alpha', 'targets', 'steps', 'warmup', 'init', 'profile', 'fitOnly', 'dawnFlags', 'headRows', 'adapter']);

/** the spec's keys and variant checked: a misspelled key would otherwise measure the default silently */
function checkSpec(spec: WorkerSpec): void {
  checkOptions('bench worker spec', spec, SPEC_KEYS);
  if (!['lora', 'sharea', 'full'].includes(spec.variant)) throw new Error(`bench worker spec: variant must be lora, sharea or full, got ${JSON.stringify(spec.variant)}`);
  const adapterKeys = (['r', 'alpha', 'targets'] as const).filter((k) => spec[k] !== undefined);
  if (spec.variant === 'full' && adapterKeys.length) throw new Error(`bench worker spec: variant full trains every parameter, without an adapter; ${adapterKeys.join(', ')} not taken`);
  if (spec.clip !== undefined && (spec.variant === 'full' || !(typeof spec.clip === 'number' && spec.clip > 0 && Number.isFinite(spec.clip)))) {
    throw new Error(`bench worker spec: clip is a finite number > 0 for variant lora or sharea (full clips at 1), got ${JSON.stringify(spec.clip)} for ${spec.variant}`);
  }
  if (spec.variant !== 'full' && adapterKeys.length < 3) throw new Error(`bench worker spec: variant ${spec.variant} needs r, alpha and targets`);
  if (spec.adapter !== undefined) {
    if (spec.variant === 'full' || typeof spec.adapter !== 'object' || spec.adapter === null || Array.isArray(spec.adapter)) {
      throw new Error(`bench worker spec: adapter is an object of injectShareLoRA options for variant lora or sharea, got ${JSON.stringify(spec.adapter)} for ${spec.variant}`);
    }
    const taken = ['r', 'alpha', 'targets', 'share', 'seed'].filter((k) => k in spec.adapter!);
    if (taken.length) throw new Error(`bench worker spec: adapter must not set ${taken.join(', ')} (the spec's r, alpha, targets and variant say them)`);
  }
}

/** the spec's adapter: ShareA or LoRA's share, none for VeRA and Tied-LoRA (their method's ties), and no alpha for VeRA (its vectors carry the scale) */
function adapterOptions(spec: WorkerSpec): ShareLoraOptions {
  const m = spec.adapter?.method;
  const base = { r: spec.r!, targets: spec.targets!, seed: 0, ...(m === 'vera' ? {} : { alpha: spec.alpha! }) };
  if (m === 'vera' || m === 'tied-lora') {
    if (spec.variant !== 'lora') throw new Error(`bench worker spec: method ${m} ties by construction; give variant lora, got ${spec.variant}`);
    return { ...base, ...spec.adapter };
  }
  return { ...base, share: spec.variant === 'sharea' ? 'A' : 'none', ...spec.adapter };
}

export interface WorkerResult {
  ok: boolean;
  error?: string;
  backend: string;
  device?: string;
  variant: string;
  steps?: number[];
  medianMs?: number;
  /** process CPU time per step (host work: JS, tfjs bookkeeping, Dawn encoding) */
  cpuMs?: number;
  hostCache?: unknown;
  tokensPerSec?: number;
  loss?: number[];
  trainableParams?: number;
  trainableBytes?: number;
  optimizerStateBytes?: number;
  weightBytes?: number;
  /** GPU bytes in use at the peak of a step (buffer manager), minus what was in use before it */
  activationBytes?: number;
  /** peak bytes of buffers in use (webgpu) / tensors alive (tfjs engine, cpu/wasm) */
  peakUsedBytes?: number;
  /** the webgpu buffer pool's total allocation: what the GPU holds for the process */
  poolBytes?: number;
  kernelsPerStep?: number;
  profile?: Array<{ name: string; count: number; ms: number }>;
  profileByShape?: Array<{ name: string; count: number; ms: number }>;
  profileGpuMs?: number;
  ourDispatchesPerStep?: number;
  /** every compute dispatch a timed step records (tfjs's programs and ours) */
  gpuDispatchesPerStep?: number;
  /** engine.runKernel calls a timed step (every tfjs op and our kernels, Reshape and clones' Casts included) */
  engineOpsPerStep?: number;
  bindGroupReuse?: number;
  /** engine ops a timed step by kernel name, and the GPU dispatches recorded inside each (innermost op), most first */
  opsByKernel?: Array<{ name: string; ops: number; dispatches: number }>;
  /** median time of one tiny dispatch plus its read back: the synchronisation cost a step pays at least once */
  readRoundTripMs?: number;
  stepImpl?: string;
  initSeconds?: number;
  /** the device's storage buffers per shader stage: how many tensors one multi-tensor dispatch takes (webgpu/optim.ts) */
  storageBuffersPerStage?: number;
  /** SHARELORA_WEBGPU_REPLAY=1: steps replayed, replays verified, and why shapes were refused */
  replay?: { replayed: number; verified: number; refused: Record<string, number>; pipelined: number };
}

type Pool = { numBytesUsed: number; numBytesAllocated: number; acquireBuffer: (...a: unknown[]) => unknown };

/**
 * The same tensor names and shapes randomModel draws, filled from a repeated
 * random block, every layer alike: for the max-model search, where drawing
 * 10¹⁰ normal samples in JS would take longer than the search itself.
 */
function tiledModel(configJson: Record<string, unknown>): Model {
  const c = parseConfig(configJson, 'config');
  const block = new Float32Array(1 << 20);
  let s = 12345;
  for (let i = 0; i < block.length; i++) { s = (s * 1103515245 + 12345) >>> 0; block[i] = ((s / 4294967296) - 0.5) * 0.0693; } // U(±0.035): std 0.02
  // one array per (shape, fill): tfjs keeps a reference until the first upload, so
  // 100+ layers of identical shape cost one layer of host memory
  const arrays = new Map<string, Float32Array>();
  const fill = (shape: number[], value?: number): RawTensor => {
    const key = `${shape.join('x')}:${value ?? 'r'}`;
    let data = arrays.get(key);
    if (!data) {
      const n = shape.reduce((a, b) => a * b, 1);
      data = new Float32Array(n);
      if (value !== undefined) data.fill(value);
      else for (let o = 0; o < n; o += block.length) data.set(n - o >= block.length ? block : block.subarray(0, n - o), o);
      arrays.set(key, data);
    }
    return { dtype: 'F32', shape, data };
  };
  const t = new Map<string, { t: RawTensor; file: string }>();
  const put = (name: string, shape: number[], v?: number) => t.set(name, { t: fill(shape, v), file: '(tiled random)' });
  const C = c.hidden;
  if (c.modelType === 'llama') {
    put('model.embed_tokens.weight', [c.vocabSize, C]);
    for (let i = 0; i < c.layers; i++) {
      const p = `model.layers.${i}`;
      put(`${p}.input_layernorm.weight`, [C], 1); put(`${p}.post_attention_layernorm.weight`, [C], 1);
      put(`${p}.self_attn.q_proj.weight`, [c.heads * c.headDim, C]); put(`${p}.self_attn.k_proj.weight`, [c.kvHeads * c.headDim, C]);
      put(`${p}.self_attn.v_proj.weight`, [c.kvHeads * c.headDim, C]); put(`${p}.self_attn.o_proj.weight`, [C, c.heads * c.headDim]);
      put(`${p}.mlp.gate_proj.weight`, [c.intermediate, C]); put(`${p}.mlp.up_proj.weight`, [c.intermediate, C]); put(`${p}.mlp.down_proj.weight`, [C, c.intermediate]);
    }
    put('model.norm.weight', [C], 1);
    if (!c.tieWordEmbeddings) put('lm_head.weight', [c.vocabSize, C]);
    return new Llama(c, new WeightStore(t, '(tiled random)'), 'causal-lm');
  }
  put('transformer.wte.weight', [c.vocabSize, C]); put('transformer.wpe.weight', [c.maxPositions, C]);
  for (let i = 0; i < c.layers; i++) {
    const h = `transformer.h.${i}`;
    for (const n of ['ln_1', 'ln_2']) { put(`${h}.${n}.weight`, [C], 1); put(`${h}.${n}.bias`, [C], 0); }
    put(`${h}.attn.c_attn.weight`, [C, 3 * C]); put(`${h}.attn.c_attn.bias`, [3 * C], 0);
    put(`${h}.attn.c_proj.weight`, [C, C]); put(`${h}.attn.c_proj.bias`, [C], 0);
    put(`${h}.mlp.c_fc.weight`, [C, c.intermediate]); put(`${h}.mlp.c_fc.bias`, [c.intermediate], 0);
    put(`${h}.mlp.c_proj.weight`, [c.intermediate, C]); put(`${h}.mlp.c_proj.bias`, [C], 0);
  }
  put('transformer.ln_f.weight', [C], 1); put('transformer.ln_f.bias', [C], 0);
  return new GPT2(c, new WeightStore(t, '(tiled random)'), 'causal-lm');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function runWorker(spec: WorkerSpec): Promise<WorkerResult> {
  const res: WorkerResult = { ok: false, backend: spec.backend, variant: spec.variant };
  checkSpec(spec);
  if (spec.backend === 'webgpu' && spec.dawnFlags?.length) {
    const webgpu = await import('webgpu') as unknown as { create(f: string[]): unknown; globals: object };
    Object.assign(globalThis, webgpu.globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create(spec.dawnFlags) }, configurable: true, writable: true });
  }
  const info = await useBackend(spec.backend);
  res.device = info.device;
  // SHARELORA_GEMM_K32 / SHARELORA_GEMM_COALESCED variants of the step choose these tiles
  registerGemmVariants();
  let pool: Pool | undefined;
  let peakUsed = 0;
  if (spec.backend === 'webgpu') {
    pool = (tf.backend() as unknown as { bufferManager: Pool }).bufferManager;
    const orig = pool.acquireBuffer.bind(pool);
    pool.acquireBuffer = (...a: unknown[]) => {
      const b = orig(...a);
      if (pool!.numBytesUsed > peakUsed) peakUsed = pool!.numBytesUsed;
      return b;
    };
  }
  const used = () => pool ? pool.numBytesUsed : tf.memory().numBytes;
  if (spec.backend === 'webgpu') res.storageBuffersPerStage = (tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage;
  // fusions are judged by how many ops and dispatches a step loses (bench/NOTES.md entries 10 and 12)
  const counts = { engineOps: 0, gpuDispatches: 0 };
  // per kernel name, so a fusion can be aimed at the ops a step actually runs most
  const byKernel = new Map<string, { ops: number; dispatches: number }>();
  let byKernelAt = new Map<string, { ops: number; dispatches: number }>();
  const kernelStack: string[] = [];
  const entry = (name: string) => { let e = byKernel.get(name); if (!e) byKernel.set(name, e = { ops: 0, dispatches: 0 }); return e; };
  const eng = tf.engine() as unknown as { runKernel: (...a: unknown[]) => unknown };
  const runKernel = eng.runKernel;
  eng.runKernel = function (this: unknown, ...a: unknown[]) {
    counts.engineOps++;
    const name = String(a[0]);
    entry(name).ops++;
    kernelStack.push(name);
    try { return runKernel.apply(this, a); } finally { kernelStack.pop(); }
  };
  const passProto = (globalThis as { GPUComputePassEncoder?: { prototype: { dispatchWorkgroups: (...a: unknown[]) => unknown } } }).GPUComputePassEncoder?.prototype;
  if (spec.backend === 'webgpu' && passProto) {
    const dispatchWorkgroups = passProto.dispatchWorkgroups;
    passProto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
      counts.gpuDispatches++;
      entry(kernelStack[kernelStack.length - 1] ?? '(outside an op)').dispatches++;
      return dispatchWorkgroups.apply(this, a);
    };
  }
  // Dawn reports out-of-memory and validation errors here, not as exceptions: a step that hit one computed garbage
  const gpuErrors: string[] = [];
  if (spec.backend === 'webgpu') {
    (tf.backend() as unknown as { device: { onuncapturederror: unknown } }).device.onuncapturederror = (e: { error: { message: string } }) => {
      if (gpuErrors.length < 5) gpuErrors.push(e.error.message.split('\n')[0]);
    };
  }

  const t0 = performance.now();
  const model = spec.init === 'tiled' ? tiledModel(spec.config) : randomModel(spec.config, { seed: 0 });
  const full = spec.variant === 'full';
  const adapter = full ? fullFineTune(model)
    : injectShareLoRA(model, adapterOptions(spec));
  res.initSeconds = (performance.now() - t0) / 1000;
  // Dawn's null device returns garbage: skip the non-finite check there (host-overhead runs only)
  const nullGpu = !!spec.dawnFlags?.includes('backend=null');
  const trainer = new Trainer(model, adapter, full
    ? { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1, schedule: 'cosine', warmupSteps: 200, totalSteps: 4000 }
    : { lr: 1e-4, weightDecay: 0.01, ...(spec.clip ? { maxGradNorm: spec.clip } : {}) });
  // its statistics are garbage too, so the update would be skipped: take them as finite to time the whole step's host work
  if (nullGpu) (trainer as unknown as { globalNorm: () => Promise<{ norm: number }> }).globalNorm = async () => ({ norm: 1 });

  const V = model.config.vocabSize;
  const ids = new Int32Array(spec.batch * spec.seq);
  let s = 7;
  for (let i = 0; i < ids.length; i++) { s = (s * 1103515245 + 12345) >>> 0; ids[i] = s % V; }
  const inputIds = tf.tensor2d(ids, [spec.batch, spec.seq], 'int32');
  const labels = tf.tensor2d(ids, [spec.batch, spec.seq], 'int32');
  // on the null device the batch goes as arrays: the trainer then checks it on the host, where a tensor
  // batch's check is read back from the device (garbage there)
  const rows = () => Array.from({ length: spec.batch }, (_, b) => Array.from(ids.subarray(b * spec.seq, (b + 1) * spec.seq)));
  const masked = model.task === 'masked-lm';
  if (spec.headRows !== undefined && !masked) throw new Error('bench worker spec: headRows is for a masked LM (a RoBERTa config)');
  // a masked LM: <s> ordinary ids </s> (ids 4 … V-2), 15% masked with <mask> = V-1, the same masks every step
  const mlm = masked ? collateMaskedLM(rows().map((r) => [0, ...r.slice(2).map((x) => 4 + (x % (V - 5))), 2]),
    { maskId: V - 1, vocabSize: V, specialIds: [0, 1, 2, 3], padId: 1, seed: 1, headRows: spec.headRows ?? false }) : undefined;
  const batch = mlm ? { inputIds: mlm.inputIds, attentionMask: mlm.attentionMask, labels: mlm.labels, ...(mlm.headRows ? { headRows: mlm.headRows } : {}) }
    : nullGpu ? { inputIds: rows(), labels: rows() } : { inputIds, labels };
  res.trainableParams = adapter.trainableParameterCount();
  res.trainableBytes = res.trainableParams * 4;

  // SHARELORA_WEBGPU_PIPELINE=1: fit()'s pipelined step, each call settling the one before (losses from the records)
  const pipelined = flags.webgpuPipeline;
  const step = async (): Promise<{ loss: number }> => (pipelined ? (await trainer.fitStep(batch), { loss: NaN }) : { loss: await trainer.step(batch) });
  res.stepImpl = pipelined ? 'Trainer.fitStep (pipelined: step k submitted with its update, step k-1 read meanwhile)' : 'Trainer.step (forward + backward, one read of loss and gradient statistics, AdamW)';
  res.weightBytes = used();

  try {
    const losses: number[] = [];
    const times: number[] = [];
    const cpus: number[] = [];
    const stats = spec.backend === 'webgpu' ? (await import('../src/backend/webgpu/index.js')).dispatchStats : undefined;
    let statsAt: { dispatches: number; bindGroupsCreated: number } | undefined;
    let countsAt = { ...counts };
    // SHARELORA_WEBGPU_REPLAY=1: the timed steps replay a recorded step (src/train/step-replay.ts)
    if (nullGpu) replaySettings.verify = false;
    trainer.startReplay();
    const replayAt = { ...replayStats };
    for (let i = 0; i < spec.warmup + spec.steps; i++) {
      const before = used();
      const a = performance.now();
      const cpu0 = process.cpuUsage();
      const r = await step();
      const ms = performance.now() - a;
      const cpu = process.cpuUsage(cpu0);
      losses.push(r.loss);
      if (i === 0) res.optimizerStateBytes = trainer.optimizer.stateBytes();
      if (i === spec.warmup - 1 || (spec.warmup === 0 && i === 0)) {
        peakUsed = 0; // measure the steady-state peak from here
        if (stats) statsAt = { ...stats };
        countsAt = { ...counts };
        byKernelAt = new Map([...byKernel].map(([k, v]) => [k, { ...v }]));
      }
      if (i >= spec.warmup) {
        times.push(ms);
        cpus.push((cpu.user + cpu.system) / 1000);
        if (i === spec.warmup) res.activationBytes = pool ? peakUsed - before : undefined;
      }
      if (spec.fitOnly) break;
    }
    if (pipelined) {
      await trainer.settlePipeline();
      losses.splice(0, losses.length, ...trainer.records.map((r) => r.loss));
    }
    trainer.endReplay();
    if (flags.webgpuReplay) res.replay = { replayed: replayStats.replayed - replayAt.replayed, verified: replayStats.verified - replayAt.verified, refused: replayStats.refused, pipelined: trainer.lastReplay?.pipelined ?? 0 };
    res.loss = losses;
    if (stats && statsAt && times.length) {
      // our kernels' dispatches a timed step, and the share whose bind group came from the cache
      res.ourDispatchesPerStep = (stats.dispatches - statsAt.dispatches) / times.length;
      res.bindGroupReuse = 1 - (stats.bindGroupsCreated - statsAt.bindGroupsCreated) / Math.max(1, stats.dispatches - statsAt.dispatches);
    }
    if (times.length) {
      res.engineOpsPerStep = (counts.engineOps - countsAt.engineOps) / times.length;
      if (spec.backend === 'webgpu' && passProto) res.gpuDispatchesPerStep = (counts.gpuDispatches - countsAt.gpuDispatches) / times.length;
      res.opsByKernel = [...byKernel].map(([name, v]) => {
        const at = byKernelAt.get(name) ?? { ops: 0, dispatches: 0 };
        return { name, ops: (v.ops - at.ops) / times.length, dispatches: (v.dispatches - at.dispatches) / times.length };
      }).filter((e) => e.ops || e.dispatches).sort((x, y) => y.ops - x.ops || y.dispatches - x.dispatches);
    }
    res.poolBytes = pool ? pool.numBytesAllocated : undefined;
    if (times.length) {
      res.steps = times.map((x) => +x.toFixed(2));
      res.medianMs = median(times);
      res.tokensPerSec = (spec.batch * spec.seq) / (res.medianMs / 1000);
      res.cpuMs = median(cpus);
    }
    res.peakUsedBytes = pool ? peakUsed : undefined;
    res.poolBytes = pool ? pool.numBytesAllocated : undefined;
    if (!pool) {
      // tfjs's engine counts every live tensor's bytes; tf.profile reports the peak within a step
      const p = await tf.profile(async () => { await step(); });
      res.peakUsedBytes = p.peakBytes + (res.weightBytes ?? 0);
      res.activationBytes = p.peakBytes;
    }
    if (spec.profile && spec.backend === 'webgpu') {
      const p = await tf.profile(async () => { await step(); });
      const agg = new Map<string, { count: number; ms: number }>();
      let total = 0;
      for (const k of p.kernels) {
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        const e = agg.get(k.name) ?? { count: 0, ms: 0 };
        e.count++; e.ms += ms; total += ms;
        agg.set(k.name, e);
      }
      res.kernelsPerStep = p.kernels.length;
      res.profileGpuMs = total;
      res.profile = [...agg].map(([name, v]) => ({ name, count: v.count, ms: +v.ms.toFixed(3) })).sort((a, b) => b.ms - a.ms).slice(0, 25);
      // per kernel and input shapes: one row per product of the step (which GEMM shape costs what)
      const byShape = new Map<string, { count: number; ms: number }>();
      for (const k of p.kernels) {
        const key = `${k.name} ${k.inputShapes.map((sh) => `[${sh}]`).join('')}`;
        const e = byShape.get(key) ?? { count: 0, ms: 0 };
        e.count++; e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        byShape.set(key, e);
      }
      res.profileByShape = [...byShape].map(([name, v]) => ({ name, count: v.count, ms: +v.ms.toFixed(4) })).sort((a, b) => b.ms - a.ms).slice(0, 60);
    }
    if (spec.backend === 'webgpu') res.hostCache = (await import('../src/backend/webgpu/index.js')).hostStats;
    if (spec.backend === 'webgpu' && !nullGpu) {
      // the floor under every step: one small dispatch and the read the trainer makes (submit, map, copy back);
      // 4096 elements, because tfjs runs ops on tensors under 1,000 elements on the CPU
      const one = tf.ones([4096]);
      const rt: number[] = [];
      for (let i = 0; i < 25; i++) {
        const a = performance.now();
        const y = tf.add(one, 1);
        await y.data();
        y.dispose();
        if (i >= 5) rt.push(performance.now() - a);
      }
      one.dispose();
      res.readRoundTripMs = +median(rt).toFixed(3);
    }
    if (gpuErrors.length) throw new Error(`GPU error: ${gpuErrors.join(' | ')}`);
    if (!losses.every(Number.isFinite) && !nullGpu) throw new Error(`non-finite loss ${losses}`);
    res.ok = true;
  } catch (e) {
    res.error = String((e as Error).message ?? e).split('\n')[0];
    if (gpuErrors.length && !res.error.startsWith('GPU error')) res.error += ` (GPU: ${gpuErrors[0]})`;
  }
  return res;
}

if (process.argv[1] && /worker\.js$/.test(process.argv[1]) && process.argv[2]) {
  const spec = JSON.parse(process.argv[2]) as WorkerSpec;
  runWorker(spec).then((r) => {
    process.stdout.write(`@@RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  }, (e) => {
    process.stdout.write(`@@RESULT ${JSON.stringify({ ok: false, backend: spec.backend, variant: spec.variant, error: String(e?.message ?? e).split('\n')[0] })}\n`);
    process.exit(0);
  });
}
