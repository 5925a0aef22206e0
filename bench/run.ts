/**
 * `npm run bench`: GPT-2-small LoRA / ShareA training throughput and memory
 * on our WebGPU kernels, against PyTorch + PEFT on the same GPU in the same
 * run, plus the plain-tfjs WebGPU path, the wasm and cpu backends at a small
 * shape (against PyTorch on the CPU), a GEMM sweep, and the largest
 * LLaMA-shaped model ShareA can fine-tune.
 *
 *   node dist/bench/run.js                 # gpu suite if a real GPU adapter exists, else cpu suite
 *   node dist/bench/run.js --suite gpu,cpu,gemm,max --steps 10 --out bench/results/x.json
 *   node dist/bench/run.js --suite notebook,scaling --repeats 3   # each side 3 times, median of medians
 *   node dist/bench/run.js --suite pretrain --steps 20 --warmup 6 --repeats 3   # full training at the pretraining shape
 *   bash bench/gpu-all.sh                  # the one device script (bench/NOTES.md)
 *
 * Each configuration runs in its own process (bench/worker.ts,
 * bench/torch_bench.py) so GPU memory peaks are per configuration.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFlags } from './flags.js';
import type { WorkerResult, WorkerSpec } from './worker.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const PY = join(ROOT, 'bench', 'torch_bench.py');

const args = process.argv.slice(2);
const arg = (name: string, dflt?: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};

export const GPT2_SMALL = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: 12, n_embd: 768, n_head: 12, vocab_size: 50257, n_positions: 1024,
  resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', initializer_range: 0.02,
};
/** the CPU path's shape: small enough for a plain-JS backend to finish a step in seconds */
export const GPT2_TINY = { ...GPT2_SMALL, n_layer: 4, n_embd: 256, n_head: 4, vocab_size: 8192, n_positions: 256 };

type AnyResult = Record<string, unknown> & { ok: boolean; medianMs?: number; tokensPerSec?: number; error?: string };

function log(s: string) { process.stderr.write(`${s}\n`); }

function parseResult(out: string): AnyResult {
  const line = out.split('\n').find((l) => l.startsWith('@@RESULT '));
  if (!line) return { ok: false, error: `no result; output tail: ${out.slice(-400)}` };
  return JSON.parse(line.slice(9));
}

function runNode(script: string, spec: unknown, env: Record<string, string> = {}, timeoutS = 600): AnyResult {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(HERE, script), JSON.stringify(spec)], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20,
  });
  const res = parseResult((r.stdout ?? '') + (r.error ? `\n${r.error.message}` : ''));
  res.wallSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  if (!res.ok && r.stderr) res.stderrTail = r.stderr.split('\n').filter((l) => l && !/^Warning: max/.test(l)).slice(-6).join('\n');
  return res;
}

let pythonOk: boolean | undefined;
function python(): string | undefined {
  const py = benchFlags.python;
  if (pythonOk === undefined) {
    const r = spawnSync(py, ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' });
    pythonOk = r.status === 0;
    if (!pythonOk) log(`# PyTorch baseline unavailable (${py}: ${(r.stderr || '').trim().split('\n').pop()})`);
  }
  return pythonOk ? py : undefined;
}

function runTorch(spec: unknown, timeoutS = 600): AnyResult {
  const py = python();
  if (!py) return { ok: false, error: 'python3 with torch, transformers and peft not found' };
  const t0 = performance.now();
  const r = spawnSync(py, [PY, JSON.stringify(spec)], { encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  const res = parseResult((r.stdout ?? '') + (r.stderr ? `\n${r.stderr}` : ''));
  res.wallSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  return res;
}

async function gpuAdapter(): Promise<string | undefined> {
  try {
    const webgpu = await import('webgpu') as unknown as { create(f: string[]): { requestAdapter(): Promise<{ info: Record<string, string> } | null> }; globals: object };
    Object.assign(globalThis, webgpu.globals);
    const ad = await webgpu.create([]).requestAdapter();
    if (!ad) return undefined;
    const d = [ad.info.vendor, ad.info.architecture, ad.info.description || ad.info.device].filter(Boolean).join(' ');
    return /llvmpipe|lavapipe|swiftshader/i.test(d) ? undefined : d;
  } catch {
    return undefined;
  }
}

const GiB = 2 ** 30, MiB = 2 ** 20;
const fmtB = (b?: unknown) => typeof b === 'number' ? (b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : `${(b / MiB).toFixed(1)} MiB`) : '-';
const fmt = (x?: unknown, d = 1) => typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-';

function versions(): Record<string, string> {
  const pkg = (p: string) => { try { return JSON.parse(readFileSync(join(ROOT, 'node_modules', p, 'package.json'), 'utf8')).version; } catch { return '?'; } };
  let commit = '?';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
  let gpu = '';
  try { gpu = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' }).trim(); } catch { /* no NVIDIA GPU */ }
  return {
    node: process.version, tfjs: pkg('@tensorflow/tfjs-core'), tfjsWebgpu: pkg('@tensorflow/tfjs-backend-webgpu'), tfjsWasm: pkg('@tensorflow/tfjs-backend-wasm'),
    webgpu: pkg('webgpu'), commit, cpu: `${os.cpus()[0]?.model ?? '?'} ×${os.cpus().length}`, nvidiaSmi: gpu,
  };
}

function lowrankBytes(L: number, dIn: number, dOut: number, r: number, shareA: boolean) {
  const params = (shareA ? r * dIn : L * r * dIn) + L * dOut * r;
  return { params, adamStateBytes: params * 8 };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/**
 * Runs every configuration `repeats` times, round-robin (ours and PyTorch
 * alternate, so a drift of the machine's clocks or load hits both sides), and
 * merges each configuration's runs: medianMs is the median of the runs'
 * median steps, `runs` keeps each run's median. Other fields are the first
 * successful run's (memory, parameter counts and the profile do not vary).
 */
function repeated(repeats: number, jobs: Record<string, () => AnyResult>, progress?: (all: Record<string, AnyResult[]>) => void): Record<string, AnyResult> {
  const all: Record<string, AnyResult[]> = {};
  for (let i = 0; i < repeats; i++) {
    for (const [k, job] of Object.entries(jobs)) {
      log(`# ${k} (run ${i + 1}/${repeats}) ...`);
      const r = job();
      log(`#   ${JSON.stringify({ ok: r.ok, ms: r.medianMs, s: r.wallSeconds, err: r.error })}`);
      (all[k] ??= []).push(r);
      // a run cut short by the device script's time limit still leaves every finished run in the JSON
      progress?.(all);
    }
  }
  const merged: Record<string, AnyResult> = {};
  for (const [k, rs] of Object.entries(all)) {
    const ok = rs.filter((r) => r.ok && typeof r.medianMs === 'number');
    if (!ok.length) { merged[k] = rs[0]; continue; }
    const medianMs = median(ok.map((r) => r.medianMs as number));
    const tokens = (ok[0].tokensPerSec as number) * (ok[0].medianMs as number) / 1000;
    merged[k] = { ...ok[0], medianMs, tokensPerSec: tokens / (medianMs / 1000), runs: rs.map((r) => r.ok ? +(r.medianMs as number).toFixed(2) : r.error), repeats };
  }
  return merged;
}

type ShapeTime = { name: string; count: number; ms: number };
/**
 * A profiled variant against the profile of its model's main configuration: the GPU time of a step and the
 * kernel shapes that moved most (ms a step, variant minus main), e.g.
 * "; GPU 46.1 ms (main 46.8) over 720 kernels (696): ShareLoraMatMul [2048,2304][2048,8] -0.41 (0.85 -> 0.44), ...".
 */
function profileDelta(v: AnyResult, main: AnyResult | undefined): string {
  const a = v.profileByShape as ShapeTime[] | undefined, b = main?.profileByShape as ShapeTime[] | undefined;
  if (!a) return '';
  const head = `; GPU ${fmt(v.profileGpuMs as number)} ms${b ? ` (main ${fmt(main!.profileGpuMs as number)})` : ''} over ${v.kernelsPerStep} kernels${b ? ` (${main!.kernelsPerStep})` : ''}`;
  if (!b) return head;
  const ms = (xs: ShapeTime[]) => new Map(xs.map((x) => [x.name, x.ms]));
  const va = ms(a), vb = ms(b);
  const moved = [...new Set([...va.keys(), ...vb.keys()])].map((n) => ({ n, d: (va.get(n) ?? 0) - (vb.get(n) ?? 0), was: vb.get(n) ?? 0, now: va.get(n) ?? 0 }))
    .filter((x) => Math.abs(x.d) >= 0.02).sort((x, y) => Math.abs(y.d) - Math.abs(x.d)).slice(0, 6);
  return `${head}: ${moved.map((x) => `${x.n} ${x.d >= 0 ? '+' : ''}${x.d.toFixed(2)} (${x.was.toFixed(2)} -> ${x.now.toFixed(2)})`).join(', ') || 'no shape moved by 0.02 ms'}`;
}

/**
 * --clip N (gpu suite): both sides clip the adapters' global gradient norm at N (ours: Trainer maxGradNorm; PyTorch:
 * clip_grad_norm_), as HF Trainer does by default (1.0) and as fit()'s pipelined step (SHARELORA_WEBGPU_PIPELINE) needs
 */
function clipSpec(): { clip?: number } {
  const c = arg('clip');
  if (c === undefined) return {};
  const n = Number(c);
  if (!(n > 0 && Number.isFinite(n))) throw new Error(`bench/run.js: --clip must be a finite number > 0, got ${JSON.stringify(c)}`);
  return { clip: n };
}

async function suiteGpu(steps: number, out: Record<string, unknown>, save: () => void) {
  const spec = (variant: 'lora' | 'sharea', extra: Partial<WorkerSpec> = {}): WorkerSpec => ({
    backend: 'webgpu', config: GPT2_SMALL, batch: 8, seq: 256, variant, r: 8, alpha: 16, targets: ['c_attn'], steps, warmup: Number(arg('warmup', '3')),
    // --init tiled: a repeated random block instead of 124 M draws in JS (4 s a process; step time does not depend on it)
    ...(arg('init') === 'tiled' ? { init: 'tiled' as const } : {}), ...clipSpec(), ...extra,
  });
  const repeats = Number(arg('repeats', '1'));
  const torchSpec = (variant: 'lora' | 'sharea', extra: Record<string, unknown> = {}) =>
    ({ config: GPT2_SMALL, batch: 8, seq: 256, variant, r: 8, alpha: 16, targets: ['c_attn'], steps: Math.max(steps, 10), warmup: 3, attn: 'sdpa', ...clipSpec(), ...extra });
  // the per-kernel profile runs once, after the timed steps of the first run (it does not change the timed steps)
  let profiled = false, profiledA = false;
  const hostVariants: Record<string, Record<string, string>> = args.includes('--host-variants')
    ? { 'no host caches': { SHARELORA_WEBGPU_HOST_CACHE: '0' }, 'submit every 64': { SHARELORA_WEBGPU_SUBMIT_BATCH: '64' } } : {};
  const variants = Object.entries({ ...hostVariants, ...(JSON.parse(arg('variants') ?? '{}') as Record<string, Record<string, string>>) });
  // --variant-models sharea: the A/Bs on one of the two (they move LoRA and ShareA alike)
  const variantModels = (arg('variant-models') ?? 'lora,sharea').split(',') as Array<'lora' | 'sharea'>;
  // --interleave-variants: each variant joins the round-robin with the full step count, `repeats` runs like the
  // main configurations, instead of one shorter run after them (a difference of a few ms needs runs that alternate)
  const interleave = args.includes('--interleave-variants');
  const variantJobs: Record<string, () => AnyResult> = {};
  // each interleaved variant's first good run is profiled too (one extra step after its timed ones), so a variant's
  // GPU time and its per-shape kernel times sit beside the main profile of the same call
  const variantProfiled = new Set<string>();
  if (interleave) for (const [name, env] of variants) for (const v of variantModels) {
    const key = `ours ${v}: ${name}`;
    variantJobs[key] = () => { const r = runNode('worker.js', spec(v, { profile: !variantProfiled.has(key) }), env); if (r.ok) variantProfiled.add(key); return r; };
  }
  // one variant in a run of its own after the main configurations, profiled (one step after the timed ones): a kernel
  // change shows in its GPU time by shape, which one run measures
  const variantRun = (v: 'lora' | 'sharea', name: string, env: Record<string, string>, extra: Partial<WorkerSpec>): AnyResult => {
    log(`# ours webgpu ${v} with ${name} ...`);
    const r = runNode('worker.js', spec(v, { ...extra, profile: true }), env);
    log(`#   ${JSON.stringify({ ok: r.ok, ms: r.medianMs, cpuMs: r.cpuMs, err: r.error })}`);
    return r;
  };
  // --ours-only (a short device call): ShareA and its variants, profiled, no PyTorch, no LoRA
  if (args.includes('--ours-only')) {
    if (!variantModels.includes('sharea') || variantModels.length !== 1) throw new Error('--ours-only measures ShareA\'s variants: give --variant-models sharea');
    const only = repeated(repeats, { 'ours sharea': () => runNode('worker.js', spec('sharea', { profile: true })), ...variantJobs }, (all) => { out.gpu = { partial: all }; save(); });
    const extra: Record<string, AnyResult> = {};
    for (const [name, env] of variants) {
      const key = `sharea: ${name}`;
      if (interleave) { extra[key] = only[`ours ${key}`]; continue; }
      extra[key] = variantRun('sharea', name, env, {});
      out.gpu = { ours: { sharea: only['ours sharea'] }, torch: {}, extraRuns: extra }; save();
    }
    out.gpu = { ours: { sharea: only['ours sharea'] }, torch: {}, extraRuns: extra };
    const a = only['ours sharea'];
    return ['', `GPT-2 small ShareA, ours only: ${fmt(a.medianMs)} ms/step; GPU ${fmt(a.profileGpuMs as number)} ms over ${a.kernelsPerStep} kernels`,
      ...Object.entries(extra).map(([k, r]) => `ours ${k}: ${fmt(r.medianMs)} ms/step${profileDelta(r, a)}`)];
  }
  const both = repeated(repeats, {
    'ours lora': () => { const r = runNode('worker.js', spec('lora', { profile: !profiled })); profiled ||= r.ok; return r; },
    'torch lora': () => runTorch(torchSpec('lora')),
    // ShareA is profiled too when variants run on it: their profiles are compared with it
    'ours sharea': () => { const r = runNode('worker.js', spec('sharea', { profile: variants.length > 0 && !profiledA && variantModels.includes('sharea') })); profiledA ||= r.ok; return r; },
    'torch sharea': () => runTorch(torchSpec('sharea')),
    ...variantJobs,
  }, (all) => { out.gpu = { partial: all }; save(); });
  const ours: Record<string, AnyResult> = { lora: both['ours lora'], sharea: both['ours sharea'] };
  let plain: AnyResult = { ok: false, error: 'not run (--no-plain)' };
  if (!args.includes('--no-plain')) {
    log('# plain tfjs webgpu (no custom kernels) lora ...');
    plain = runNode('worker.js', spec('lora', { steps: Math.max(3, Math.ceil(steps / 3)), warmup: 2 }), { SHARELORA_WEBGPU_KERNELS: '0', SHARELORA_WEBGPU_MATMUL: 'tfjs', SHARELORA_WEBGPU_HOST_CACHE: '0' });
    log(`#   ${JSON.stringify({ ok: plain.ok, ms: plain.medianMs, err: plain.error })}`);
  }
  const extraRuns: Record<string, AnyResult> = {};
  for (const [name, env] of variants) {
    for (const v of variantModels) {
      const key = `${v}: ${name}`;
      if (interleave) { extraRuns[key] = both[`ours ${key}`]; continue; }
      extraRuns[key] = variantRun(v, name, env, { steps: Math.max(4, Math.ceil(steps / 2)) });
    }
  }
  const torch: Record<string, AnyResult> = { lora: both['torch lora'], sharea: both['torch sharea'] };
  if (!args.includes('--no-eager-attention')) {
    log('# pytorch+peft lora_eager ...');
    torch.lora_eager = runTorch(torchSpec('lora', { attn: 'eager' }));
    log(`#   ${JSON.stringify({ ok: torch.lora_eager.ok, ms: torch.lora_eager.medianMs, err: torch.lora_eager.error })}`);
  }
  // torch.compile (default mode): its compile time is in the warm-up, so more warm-up steps
  for (const v of (arg('compile') ?? '').split(',').filter(Boolean) as Array<'lora' | 'sharea'>) {
    log(`# pytorch+peft ${v} torch.compile ...`);
    torch[`${v}_compile`] = runTorch(torchSpec(v, { compile: true, warmup: 5 }));
    log(`#   ${JSON.stringify({ ok: torch[`${v}_compile`].ok, ms: torch[`${v}_compile`].medianMs, s: torch[`${v}_compile`].wallSeconds, err: torch[`${v}_compile`].error })}`);
  }
  const L = 12, C = 768;
  const predicted = { lora: lowrankBytes(L, C, 3 * C, 8, false), sharea: lowrankBytes(L, C, 3 * C, 8, true) };
  const rows = (['lora', 'sharea'] as const).map((v) => ({
    variant: v,
    oursMs: ours[v].medianMs, oursTokS: ours[v].tokensPerSec, torchMs: torch[v].medianMs, torchTokS: torch[v].tokensPerSec,
    ratio: ours[v].tokensPerSec && torch[v].tokensPerSec ? (ours[v].tokensPerSec as number) / (torch[v].tokensPerSec as number) : undefined,
    oursPoolBytes: ours[v].poolBytes, oursPeakUsedBytes: ours[v].peakUsedBytes, torchPeakBytes: torch[v].peakAllocatedBytes,
    oursTrainable: ours[v].trainableParams, torchTrainable: torch[v].trainableParams,
    oursOptState: ours[v].optimizerStateBytes, torchOptState: torch[v].optimizerStateBytes, predictedOptState: predicted[v].adamStateBytes,
    oursActivation: ours[v].activationBytes, torchActivation: torch[v].activationBytes,
  }));
  out.gpu = {
    shape: 'GPT-2 small (12 layers, 768 wide, 12 heads, vocab 50257), batch 8 x 256 tokens, fp32, AdamW(lr 1e-4, wd 0.01), r=8 alpha=16 on c_attn, dropout 0',
    ours, plain, extraRuns, torch, predicted, rows,
    shareASavingBytes: {
      predicted: predicted.lora.adamStateBytes - predicted.sharea.adamStateBytes,
      ours: (ours.lora.optimizerStateBytes as number) - (ours.sharea.optimizerStateBytes as number),
      torch: (torch.lora.optimizerStateBytes as number) - (torch.sharea.optimizerStateBytes as number),
      formula: '(L-1)·r·d_in·8 bytes (Adam m and v, fp32) = 11·8·768·8',
    },
  };
  const lines = [
    '',
    'GPT-2 small, batch 8 x 256, fp32, AdamW — ours (tfjs webgpu + ShareLoRA WGSL kernels) vs PyTorch + PEFT, same GPU, same run',
    'variant | ours ms/step | ours tok/s | torch ms/step | torch tok/s | ours/torch | ours GPU pool | torch peak | trainable | Adam state ours/torch/predicted',
    ...rows.map((r) => `${r.variant} | ${fmt(r.oursMs)} | ${fmt(r.oursTokS, 0)} | ${fmt(r.torchMs)} | ${fmt(r.torchTokS, 0)} | ${fmt(r.ratio, 3)}x | ${fmtB(r.oursPoolBytes)} | ${fmtB(r.torchPeakBytes)} | ${r.oursTrainable}/${r.torchTrainable} | ${r.oursOptState}/${r.torchOptState}/${r.predictedOptState}`),
    `plain tfjs webgpu lora: ${fmt(plain.medianMs)} ms/step (${fmt(plain.tokensPerSec, 0)} tok/s, ${fmt(plain.tokensPerSec && torch.lora.tokensPerSec ? (plain.tokensPerSec as number) / (torch.lora.tokensPerSec as number) : NaN, 3)}x torch), pool ${fmtB(plain.poolBytes)}; ours/plain = ${fmt(plain.medianMs && ours.lora.medianMs ? (plain.medianMs as number) / (ours.lora.medianMs as number) : NaN, 2)}x`,
    `pytorch lora eager attention: ${fmt(torch.lora_eager?.medianMs)} ms/step`,
    ...Object.keys(torch).filter((k) => k.endsWith('_compile')).map((k) => {
      const v = k.split('_')[0];
      return `pytorch ${v} torch.compile: ${fmt(torch[k].medianMs)} ms/step; ours/compiled = ${fmt(ours[v]?.medianMs && torch[k].medianMs ? (torch[k].medianMs as number) / (ours[v].medianMs as number) : NaN, 3)}x ${torch[k].error ?? ''}`;
    }),
    ...(repeats > 1 ? (['lora', 'sharea'] as const).map((v) => `${v} runs (median of each run's median step): ours ${JSON.stringify(ours[v].runs)} torch ${JSON.stringify(torch[v].runs)}`) : []),
    `first-step loss (same weights and batch): ours ${(ours.lora.loss as number[] | undefined)?.[0]} | plain tfjs ${(plain.loss as number[] | undefined)?.[0]} | GPU kernel time per step (profile) ${fmt(ours.lora.profileGpuMs)} ms over ${ours.lora.kernelsPerStep} kernels; host CPU ${fmt(ours.lora.cpuMs)} ms/step`,
    ...(ours.sharea.profileGpuMs !== undefined ? [`ShareA's profiled step: ${fmt(ours.sharea.profileGpuMs as number)} ms of GPU time over ${ours.sharea.kernelsPerStep} kernels`] : []),
    ...Object.entries(extraRuns).map(([k, r]) => {
      const t = torch[k.split(':')[0]]?.tokensPerSec as number | undefined;
      return `ours ${k}: ${fmt(r.medianMs)} ms/step, ${fmt(r.tokensPerSec, 0)} tok/s (${fmt(t && r.tokensPerSec ? (r.tokensPerSec as number) / t : NaN, 3)}x torch), cpu ${fmt(r.cpuMs)} ms/step${r.runs ? `, runs ${JSON.stringify(r.runs)}` : ''}${profileDelta(r, ours[k.split(':')[0]])}`;
    }),
  ];
  return lines;
}

/** The notebooks' workload: the embedded model's shape (6 layers) and twice as deep. */
export const NOTEBOOK = { ...GPT2_SMALL, n_embd: 256, n_head: 8, vocab_size: 8257, n_positions: 256 };

/**
 * Notebook scale (issue 25): GPT-2 256 wide, 8 heads, vocabulary 8,257,
 * batch 32 × 128, r=8 on c_attn, 6 and 12 layers, LoRA and ShareA; ours
 * against PyTorch + PEFT eager in the same run. Here per-step host work and
 * dispatch count decide the speed, not GEMM throughput.
 */
async function suiteNotebook(steps: number, out: Record<string, unknown>, save: () => void) {
  const repeats = Number(arg('repeats', '1'));
  const warmup = Number(arg('warmup', '5'));
  const jobs: Record<string, () => AnyResult> = {};
  // one profiled step (GPU time and kernel count) per configuration, after the timed steps of its first run:
  // whether the step is host- or GPU-bound at this scale
  const profiled = new Set<string>();
  for (const layers of (arg('notebook-layers') ?? '6,12').split(',').map(Number)) {
    for (const v of (arg('notebook-variants') ?? 'sharea,lora').split(',')) {
      const base = { config: { ...NOTEBOOK, n_layer: layers }, batch: 32, seq: 128, variant: v, r: 8, alpha: 16, targets: ['c_attn'], steps, warmup };
      const key = `ours ${layers} ${v}`;
      jobs[key] = () => {
        const r = runNode('worker.js', { ...base, backend: 'webgpu', profile: !profiled.has(key) });
        if (r.ok) profiled.add(key);
        return r;
      };
      jobs[`torch ${layers} ${v}`] = () => runTorch({ ...base, attn: 'sdpa' });
    }
  }
  const res = repeated(repeats, jobs, (all) => { out.notebook = { partial: all }; save(); });
  // --variants '{"name":{"SHARELORA_X":"0"}}': ours again under other switches, once per configuration, after the main runs
  const variants = JSON.parse(arg('variants') ?? '{}') as Record<string, Record<string, string>>;
  const variantRes: Record<string, AnyResult> = {};
  for (const [name, env] of Object.entries(variants)) {
    for (const k of Object.keys(jobs).filter((j) => j.startsWith('ours '))) {
      const [, layers, v] = k.split(' ');
      // profiled too (one extra step after the timed ones): whether a variant's time moved on the GPU or on the host
      const base = { config: { ...NOTEBOOK, n_layer: Number(layers) }, batch: 32, seq: 128, variant: v, r: 8, alpha: 16, targets: ['c_attn'], steps, warmup, backend: 'webgpu', profile: true };
      log(`# ${k} with ${name} ...`);
      variantRes[`${k}: ${name}`] = runNode('worker.js', base, env);
      log(`#   ${JSON.stringify({ ok: variantRes[`${k}: ${name}`].ok, ms: variantRes[`${k}: ${name}`].medianMs, err: variantRes[`${k}: ${name}`].error })}`);
    }
  }
  const rows = Object.keys(res).filter((k) => k.startsWith('ours ')).map((k) => {
    const [, layers, v] = k.split(' ');
    const o = res[k], t = res[`torch ${layers} ${v}`];
    return { layers: Number(layers), variant: v, oursMs: o.medianMs, torchMs: t.medianMs, ratio: o.medianMs && t.medianMs ? (t.medianMs as number) / (o.medianMs as number) : undefined,
      oursCpuMs: o.cpuMs, oursGpuMs: o.profileGpuMs, oursKernels: o.kernelsPerStep, oursReadMs: o.readRoundTripMs, oursRuns: o.runs, torchRuns: t.runs, oursError: o.error, torchError: t.error };
  });
  out.notebook = { shape: 'GPT-2 shape, 256 wide, 8 heads, vocab 8257, batch 32 x 128, r=8 alpha=16 on c_attn, AdamW, fp32; PyTorch + PEFT eager (sdpa)', results: res, rows, variants, variantResults: variantRes };
  return [
    '',
    `Notebook scale (256 wide, 8 heads, vocab 8257, batch 32 x 128, r=8 on c_attn) — ours vs PyTorch + PEFT eager, same run, ${repeats} run(s) each, median of medians`,
    'layers variant | ours ms/step | ours host CPU ms/step | ours GPU ms/step (profile, kernels) | ours read round trip ms | torch ms/step | ours/torch (speed)',
    ...rows.map((r) => `${r.layers} ${r.variant} | ${fmt(r.oursMs)} | ${fmt(r.oursCpuMs)} | ${fmt(r.oursGpuMs)} (${r.oursKernels ?? '-'}) | ${fmt(r.oursReadMs, 3)} | ${fmt(r.torchMs)} | ${fmt(r.ratio, 3)}x ${r.oursError ?? ''} ${r.torchError ?? ''}`),
    ...Object.entries(variantRes).map(([k, r]) => {
      const [, layers, rest] = k.split(' ');
      const t = res[`torch ${layers} ${rest.split(':')[0]}`];
      return `${k.slice(5)} | ${fmt(r.medianMs)} | ${fmt(r.cpuMs)} | ${fmt(r.profileGpuMs as number | undefined)} (${r.kernelsPerStep ?? '-'}) | ${fmt(r.readRoundTripMs as number | undefined, 3)} | ${fmt(t?.medianMs)} | ${fmt(r.medianMs && t?.medianMs ? (t.medianMs as number) / (r.medianMs as number) : NaN, 3)}x ${r.error ?? ''}`;
    }),
  ];
}

/**
 * The pretraining models' shape (scripts/pretrain/run.ts modelConfig('causal', preset 'd256-l12') with the
 * prepared data's 8,000 merges): GPT2LMHeadModel, 12 layers, 256 wide, 8 heads, vocabulary 8,257, tied head.
 */
export const PRETRAIN_CAUSAL = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 8257, n_positions: 256, n_embd: 256, n_layer: 12, n_head: 8, n_inner: null,
  activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  scale_attn_weights: true, tie_word_embeddings: true, bos_token_id: 8256, eos_token_id: 8256, pad_token_id: null,
};

/** The masked LM of the same shape (scripts/pretrain/weights/mlm-s13/config.json): RobertaForMaskedLM, vocabulary 8,261, tied decoder. */
export const PRETRAIN_MLM = {
  model_type: 'roberta', architectures: ['RobertaForMaskedLM'], vocab_size: 8261, hidden_size: 256, num_hidden_layers: 12, num_attention_heads: 8,
  intermediate_size: 1024, hidden_act: 'gelu', max_position_embeddings: 258, type_vocab_size: 1, layer_norm_eps: 1e-5, initializer_range: 0.02,
  hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2, tie_word_embeddings: true,
};

/**
 * Full training at the pretraining shape (scripts/pretrain-causal.ts: every parameter trained, no adapter,
 * batch 64 × 256): ours (variant 'full': fullFineTune, the pretraining recipe, step replay as trainRun runs it)
 * against PyTorch (GPT2LMHeadModel of the same config, AdamW over every parameter, the same clip, fp32, TF32
 * off, sdpa), `repeats` runs each, interleaved; the per-kernel profile of one normal (unreplayed) step of
 * ours after its first run's timed steps; --variants: ours again under other switches, one run each, profiled.
 * --pretrain-batch changes the batch (a smaller one to check the suite on a slow adapter).
 */
export async function suitePretrain(steps: number, out: Record<string, unknown>, save: () => void): Promise<string[]> {
  const repeats = Number(arg('repeats', '1'));
  const warmup = Number(arg('warmup', '6'));
  const batch = Number(arg('pretrain-batch', '64'));
  const base = { config: PRETRAIN_CAUSAL, batch, seq: 256, variant: 'full' as const, steps, warmup };
  let profiled = false;
  const res = repeated(repeats, {
    ours: () => { const r = runNode('worker.js', { ...base, backend: 'webgpu', profile: !profiled }); profiled ||= r.ok; return r; },
    torch: () => runTorch({ ...base, attn: 'sdpa' }),
  }, (all) => { out.pretrain = { partial: all }; save(); });
  const variants = JSON.parse(arg('variants') ?? '{}') as Record<string, Record<string, string>>;
  const variantRes: Record<string, AnyResult> = {};
  for (const [name, env] of Object.entries(variants)) {
    log(`# ours with ${name} ...`);
    variantRes[name] = runNode('worker.js', { ...base, backend: 'webgpu', profile: true }, env);
    log(`#   ${JSON.stringify({ ok: variantRes[name].ok, ms: variantRes[name].medianMs, err: variantRes[name].error })}`);
  }
  // the masked LM (ours only): the head on the masked rows against the head on every row, one run each (entry 26)
  const mlmRes: Record<string, AnyResult> = {};
  if (arg('pretrain-mlm') !== '0') {
    for (const [name, headRows] of [['masked LM, head on the masked rows', true], ['masked LM, head on every row', false]] as const) {
      log(`# ours, ${name} ...`);
      mlmRes[name] = runNode('worker.js', { ...base, config: PRETRAIN_MLM, backend: 'webgpu', headRows });
      log(`#   ${JSON.stringify({ ok: mlmRes[name].ok, ms: mlmRes[name].medianMs, err: mlmRes[name].error })}`);
    }
  }
  const o = res.ours, t = res.torch;
  const speed = (x?: AnyResult) => x?.medianMs && t.medianMs ? (t.medianMs as number) / (x.medianMs as number) : NaN;
  out.pretrain = { shape: `GPT-2 d256-l12 (vocab 8257, tied head), full training, batch ${batch} x 256, fp32, AdamW(1e-3, betas 0.9/0.95, wd 0.1), clip 1; PyTorch eager (sdpa)`, results: res, variants, variantResults: variantRes, mlm: mlmRes };
  const row = (name: string, x: AnyResult) => `${name} | ${fmt(x.medianMs)} | ${fmt(x.cpuMs)} | ${fmt(x.profileGpuMs as number | undefined)} (${x.kernelsPerStep ?? '-'}) | ${x.gpuDispatchesPerStep ?? '-'} | ${JSON.stringify(x.replay ?? null)} | ${fmt(speed(x), 3)}x ${x.error ?? ''}`;
  const byShape = (o.profileByShape as Array<{ name: string; count: number; ms: number }> | undefined) ?? [];
  const gpuMs = o.profileGpuMs as number | undefined;
  return [
    '',
    `Pretraining shape: GPT-2 d256-l12 (12 x 256, 8 heads, vocab 8257, tied head), every parameter trained, batch ${batch} x 256, fp32, AdamW, clip 1 — ours vs PyTorch eager, same run, ${repeats} run(s) each, median of medians`,
    `PyTorch: ${fmt(t.medianMs)} ms/step, runs ${JSON.stringify(t.runs ?? null)}, peak ${fmtB(t.peakAllocatedBytes)} ${t.error ?? ''}`,
    `ours: runs ${JSON.stringify(o.runs ?? null)}, pool ${fmtB(o.poolBytes)}, ${o.engineOpsPerStep ?? '-'} engine ops a step, ${o.storageBuffersPerStage ?? '-'} storage buffers a stage, read round trip ${fmt(o.readRoundTripMs as number | undefined, 3)} ms`,
    'what | ms/step | host CPU ms/step | GPU ms (profile of a normal step, kernels) | dispatches a timed step | replay | speed ours/PyTorch',
    row('ours', o),
    ...Object.entries(variantRes).map(([k, x]) => row(`ours, ${k}`, x)),
    ...Object.entries(mlmRes).map(([k, x]) => row(`ours, ${k} (RobertaForMaskedLM d256-l12, vocab 8261; not the PyTorch model)`, x)),
    `our profiled step, by kernel and input shapes (ms in the step, count, share of ${fmt(gpuMs)} ms):`,
    ...byShape.slice(0, 30).map((k) => `  ${fmt(k.ms, 3).padStart(8)} ms ${String(k.count).padStart(4)}x ${gpuMs ? `${((100 * k.ms) / gpuMs).toFixed(1).padStart(5)}%` : ''}  ${k.name}`),
    `by kernel: ${((o.profile as Array<{ name: string; count: number; ms: number }> | undefined) ?? []).map((k) => `${k.name} ${fmt(k.ms, 2)} ms/${k.count}`).join(', ')}`,
  ];
}

/**
 * Scaling table: GPT-2 medium and large (batch 8 × 256, as the gpu suite's
 * small) and a LLaMA-shaped stack (LLaMA-7B-wide layers, batch 4 × 256),
 * ShareA r=8, ours against PyTorch + PEFT eager.
 */
async function suiteScaling(steps: number, out: Record<string, unknown>, save: () => void) {
  const repeats = Number(arg('repeats', '1'));
  const warmup = Number(arg('warmup', '3'));
  const shapes: Record<string, { config: Record<string, unknown>; batch: number; targets: string[] }> = {
    'gpt2-small': { config: GPT2_SMALL, batch: 8, targets: ['c_attn'] },
    'gpt2-medium': { config: { ...GPT2_SMALL, n_layer: 24, n_embd: 1024, n_head: 16 }, batch: 8, targets: ['c_attn'] },
    'gpt2-large': { config: { ...GPT2_SMALL, n_layer: 36, n_embd: 1280, n_head: 20 }, batch: 8, targets: ['c_attn'] },
    'llama-7b-wide x4': {
      config: { model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_key_value_heads: 32,
        num_hidden_layers: 4, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-6, tie_word_embeddings: false, initializer_range: 0.02 },
      batch: 4, targets: ['q_proj', 'v_proj'],
    },
  };
  const wanted = (arg('scaling-shapes') ?? 'gpt2-medium,gpt2-large,llama-7b-wide x4').split(',');
  const jobs: Record<string, () => AnyResult> = {};
  for (const name of wanted) {
    const sh = shapes[name];
    if (!sh) throw new Error(`--scaling-shapes: unknown shape ${JSON.stringify(name)}; one of ${Object.keys(shapes).join(', ')}`);
    const base = { config: sh.config, batch: sh.batch, seq: 256, variant: 'sharea' as const, r: 8, alpha: 16, targets: sh.targets, steps, warmup };
    // tiled weights: drawing GPT-2 large's 774 M normal samples in JS would take longer than its steps
    jobs[`ours ${name}`] = () => runNode('worker.js', { ...base, backend: 'webgpu', init: 'tiled' });
    jobs[`torch ${name}`] = () => runTorch({ ...base, attn: 'sdpa' });
  }
  const res = repeated(repeats, jobs, (all) => { out.scaling = { partial: all }; save(); });
  const rows = wanted.map((name) => {
    const o = res[`ours ${name}`], t = res[`torch ${name}`];
    return { shape: name, oursMs: o.medianMs, torchMs: t.medianMs, ratio: o.medianMs && t.medianMs ? (t.medianMs as number) / (o.medianMs as number) : undefined,
      oursPoolBytes: o.poolBytes, torchPeakBytes: t.peakAllocatedBytes, oursError: o.error, torchError: t.error };
  });
  out.scaling = { shape: 'ShareA r=8, fp32, AdamW, seq 256; GPT-2 batch 8 on c_attn; LLaMA-7B-wide (4096/11008/32 heads, vocab 32000, untied) 4 layers batch 4 on q_proj,v_proj', results: res, rows };
  return [
    '',
    'Scaling (ShareA r=8, fp32, seq 256) — ours vs PyTorch + PEFT eager, same run',
    'shape | ours ms/step | torch ms/step | ours/torch (speed) | ours pool | torch peak',
    ...rows.map((r) => `${r.shape} | ${fmt(r.oursMs)} | ${fmt(r.torchMs)} | ${fmt(r.ratio, 3)}x | ${fmtB(r.oursPoolBytes)} | ${fmtB(r.torchPeakBytes)} ${r.oursError ?? ''} ${r.torchError ?? ''}`),
  ];
}

async function suiteCpu(steps: number, out: Record<string, unknown>) {
  const base = { config: GPT2_TINY, batch: 4, seq: 64, r: 8, alpha: 16, targets: ['c_attn'], steps, warmup: 1 };
  const res: Record<string, AnyResult> = {};
  for (const backend of (arg('cpu-backends') ?? 'wasm,cpu').split(',') as Array<'wasm' | 'cpu'>) {
    for (const v of ['lora', 'sharea'] as const) {
      log(`# ours ${backend} ${v} ...`);
      res[`${backend}_${v}`] = runNode('worker.js', { ...base, backend, variant: v });
      log(`#   ${JSON.stringify({ ok: res[`${backend}_${v}`].ok, ms: res[`${backend}_${v}`].medianMs, err: res[`${backend}_${v}`].error })}`);
    }
  }
  for (const v of ['lora', 'sharea'] as const) {
    log(`# pytorch cpu (1 thread) ${v} ...`);
    res[`torch_${v}`] = runTorch({ ...base, variant: v, device: 'cpu', threads: 1, steps: Math.max(steps, 5) });
    log(`#   ${JSON.stringify({ ok: res[`torch_${v}`].ok, ms: res[`torch_${v}`].medianMs, err: res[`torch_${v}`].error })}`);
  }
  out.cpu = { shape: 'GPT-2 (4 layers, 256 wide, 4 heads, vocab 8192), batch 4 x 64 tokens, fp32, AdamW, r=8 on c_attn; PyTorch on 1 CPU thread', results: res };
  const ratio = (a?: number, b?: number) => a && b ? `${(a / b).toFixed(3)}x` : '-';
  return [
    '',
    'CPU path: GPT-2 tiny (4 x 256, vocab 8192), batch 4 x 64 — tfjs wasm/cpu vs PyTorch CPU (1 thread), same run',
    'backend variant | ms/step | tok/s | vs torch | peak tensors',
    ...Object.entries(res).map(([k, r]) => `${k} | ${fmt(r.medianMs)} | ${fmt(r.tokensPerSec, 0)} | ${k.startsWith('torch') ? '1x' : ratio(r.tokensPerSec as number, res[`torch_${k.split('_')[1]}`]?.tokensPerSec as number)} | ${fmtB(r.peakUsedBytes)}`),
  ];
}

async function suiteGemm(out: Record<string, unknown>, dawnFlags?: string[]) {
  log(`# GEMM sweep ${dawnFlags ? JSON.stringify(dawnFlags) : ''} ...`);
  const r = runNode('gemm.js', { reps: 5, dawnFlags });
  out[dawnFlags ? 'gemmFlags' : 'gemm'] = r;
  const rows = (r.rows as Array<{ shape: string; gflop: number; perStep: number; ms: Record<string, number>; auto: string; best: string }>) ?? [];
  return [
    '',
    `GEMM sweep ${dawnFlags ? JSON.stringify(dawnFlags) : ''} (GPU time per product, ms; TFLOP/s of the auto-chosen tile) ${r.error ?? ''}`,
    `shape | ${rows[0] ? Object.keys(rows[0].ms).join(' | ') : ''} | auto | best | auto TFLOP/s`,
    ...rows.map((x) => `${x.shape} | ${Object.values(x.ms).map((v) => fmt(v, 3)).join(' | ')} | ${x.auto} | ${x.best} | ${fmt(x.gflop / x.ms[x.auto], 1)}`),
    `per-step GEMM time: ${JSON.stringify(r.stepMs)}`,
  ];
}

/**
 * Largest LLaMA-shaped model (LLaMA-7B-wide layers: 4096 / 11008 / 32 heads,
 * vocab 32000, untied head) ShareA r=8 on q,v can fine-tune, fp32, batch 1 x 256.
 * Bounded in time: two small depths give the memory per layer, the GPU's
 * size gives a predicted depth, and a bisection between the largest depth
 * seen to fit and the first seen to fail runs only while the budget lasts.
 */
async function suiteMax(out: Record<string, unknown>, budgetS: number, save: () => void) {
  const cfg = (layers: number) => ({
    model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_key_value_heads: 32,
    num_hidden_layers: layers, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-6, tie_word_embeddings: false, initializer_range: 0.02,
  });
  const base = { batch: 1, seq: 256, variant: 'sharea' as const, r: 8, alpha: 16, targets: ['q_proj', 'v_proj'], steps: 0, warmup: 1, fitOnly: true };
  let capacity = 139 * GiB;
  let gpu = 'the GPU (nvidia-smi did not answer; capacity taken as an H200\'s)';
  try {
    const [name, mib] = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).trim().split('\n')[0].split(', ');
    capacity = Number(mib) * MiB;
    gpu = `one ${name}`;
  } catch { /* default */ }
  const paramsPerLayer = 4 * 4096 * 4096 + 3 * 4096 * 11008;
  // --max-bracket ours:69:132,torch:149:170 resumes a search from an earlier run's bracket
  const brackets = new Map((arg('max-bracket') ?? '').split(',').filter(Boolean).map((b) => { const [n, l, h] = b.split(':'); return [n, [Number(l), Number(h)]] as const; }));
  const search = (name: string, fits: (L: number) => AnyResult, peakOf: (r: AnyResult) => number) => {
    const t0 = Date.now();
    const given = brackets.get(name);
    const trials: Array<{ layers: number; ok: boolean; s: number; error?: string; peakBytes?: number }> = [];
    const tryL = (L: number) => {
      const a = Date.now();
      const r = fits(L);
      trials.push({ layers: L, ok: r.ok, s: (Date.now() - a) / 1000, error: r.error, peakBytes: peakOf(r) });
      log(`#   ${name} ${L} layers: ${r.ok ? `fits, peak ${fmtB(peakOf(r))}` : `fails (${r.error})`} [${((Date.now() - a) / 1000).toFixed(0)} s]`);
      return r;
    };
    let lo = 0, hi = Infinity, predicted: number | undefined, perLayer: number | undefined;
    if (given) {
      [lo, hi] = given;
      while (hi - lo > 1 && (Date.now() - t0) / 1000 < budgetS) {
        const mid = Math.floor((lo + hi) / 2);
        if (tryL(mid).ok) lo = mid; else hi = mid;
      }
    }
    const a = given ? undefined : tryL(2), b = given ? undefined : tryL(6);
    if (a?.ok) lo = 2;
    if (b?.ok) lo = 6;
    if (a?.ok && b?.ok) {
      perLayer = (peakOf(b) - peakOf(a)) / 4;
      predicted = Math.floor(6 + (capacity - peakOf(b)) / perLayer);
      const r = tryL(predicted);
      if (r.ok) { lo = predicted; hi = Math.ceil(predicted * 1.08) + 1; } else { hi = predicted; }
      while (hi - lo > 1 && (Date.now() - t0) / 1000 < budgetS) {
        const mid = Number.isFinite(hi) ? Math.floor((lo + hi) / 2) : lo * 2;
        if (tryL(mid).ok) lo = mid; else hi = mid;
      }
    }
    return { name, largestFits: lo, smallestFails: Number.isFinite(hi) ? hi : undefined, perLayerBytes: perLayer, predicted, capacityBytes: capacity,
      params: lo * paramsPerLayer + 2 * 32000 * 4096, trials, seconds: (Date.now() - t0) / 1000 };
  };
  log('# largest LLaMA-shaped model, ours (webgpu) ...');
  const ours = search('ours', (L) => runNode('worker.js', { ...base, backend: 'webgpu', config: cfg(L), init: 'tiled' }, {}, 300), (r) => (r.poolBytes as number) ?? NaN);
  out.maxModel = { shape: 'LLaMA layers of 4096 hidden / 11008 MLP / 32 heads, vocab 32000, untied head, fp32, batch 1 x 256, ShareA r=8 on q_proj,v_proj, AdamW; ours with every layer holding the same (tiled random) weights', ours };
  save();
  log('# largest LLaMA-shaped model, pytorch+peft ...');
  const torch = search('torch', (L) => runTorch({ ...base, config: cfg(L) }, 300), (r) => (r.peakReservedBytes as number) ?? NaN);
  out.maxModel = { ...(out.maxModel as object), torch };
  save();
  const line = (r: typeof ours) => `${r.largestFits} layers fit (${(r.params / 1e9).toFixed(1)}B params)${r.smallestFails ? `, ${r.smallestFails} do not` : ''}; ${fmtB(r.perLayerBytes)} per layer, predicted ${r.predicted}; ${r.trials.length} trials in ${r.seconds.toFixed(0)} s`;
  return ['', `Largest LLaMA-shaped model (7B-wide layers) ShareA r=8 fine-tunes, fp32, batch 1 x 256, ${gpu}:`, `ours:  ${line(ours)}`, `torch: ${line(torch)}`];
}

/** every flag of this script: `--name value`, or the switches alone */
const VALUE_FLAGS = ['clip', 'compile', 'cpu-backends', 'init', 'max-bracket', 'max-budget', 'notebook-layers', 'notebook-variants', 'out', 'pretrain-batch',
  'pretrain-mlm', 'repeats', 'scaling-shapes', 'steps', 'suite', 'variant-models', 'variants', 'warmup'];
const SWITCHES = ['no-plain', 'host-variants', 'no-eager-attention', 'interleave-variants', 'ours-only'];

/** a misspelled flag would otherwise measure the default silently */
function checkArgs(): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!, name = a.replace(/^--/, '');
    if (!a.startsWith('--')) throw new Error(`bench/run.js: expected a --flag, got ${JSON.stringify(a)}`);
    if (SWITCHES.includes(name)) continue;
    if (!VALUE_FLAGS.includes(name)) throw new Error(`bench/run.js: unknown flag --${name} (flags: ${[...VALUE_FLAGS, ...SWITCHES].map((f) => `--${f}`).join(', ')})`);
    if (args[i + 1] === undefined) throw new Error(`bench/run.js: --${name} needs a value`);
    i++;
  }
}

async function main() {
  checkArgs();
  const gpu = await gpuAdapter();
  const suites = (arg('suite') ?? (gpu ? 'gpu,cpu' : 'cpu')).split(',');
  // only the gpu suite interleaves its variants; elsewhere the switch would change nothing, silently
  if (args.includes('--interleave-variants') && !suites.includes('gpu')) throw new Error('bench/run.js: --interleave-variants applies to --suite gpu only');
  if (args.includes('--ours-only') && !suites.includes('gpu')) throw new Error('bench/run.js: --ours-only applies to --suite gpu only');
  if (arg('clip') !== undefined && suites.join(',') !== 'gpu') throw new Error('bench/run.js: --clip applies to --suite gpu alone');
  clipSpec();
  const steps = Number(arg('steps', '10'));
  const out: Record<string, unknown> = { date: new Date().toISOString(), adapter: gpu ?? 'none (no hardware WebGPU adapter)', versions: versions(), argv: args };
  const lines: string[] = [];
  const file = arg('out') ?? join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${(gpu ? gpu : 'cpu').replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  // written after every suite, so a run cut short still leaves what it measured
  const save = () => writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
  for (const s of suites) {
    if (s === 'gpu') {
      if (!gpu) { lines.push('gpu suite skipped: no hardware WebGPU adapter'); continue; }
      lines.push(...await suiteGpu(steps, out, save));
    } else if (s === 'cpu') lines.push(...await suiteCpu(Math.min(steps, 3), out));
    else if (s === 'notebook' || s === 'scaling' || s === 'pretrain') {
      if (!gpu) { lines.push(`${s} suite skipped: no hardware WebGPU adapter`); continue; }
      lines.push(...await (s === 'notebook' ? suiteNotebook : s === 'scaling' ? suiteScaling : suitePretrain)(steps, out, save));
    } else if (s === 'gemm') lines.push(...await suiteGemm(out));
    else if (s === 'gemm-unsafe') lines.push(...await suiteGemm(out, ['enable-dawn-features=allow_unsafe_apis,disable_robustness']));
    else if (s === 'max') lines.push(...await suiteMax(out, Number(arg('max-budget', '240')), save));
    else throw new Error(`unknown suite ${JSON.stringify(s)}: one of gpu, notebook, scaling, pretrain, cpu, gemm, gemm-unsafe, max`);
    save();
    console.log(lines.join('\n'));
    lines.length = 0;
  }
  const torchInfo = Object.values((out.gpu as { torch?: Record<string, AnyResult> })?.torch ?? {})[0];
  if (torchInfo) (out.versions as Record<string, unknown>).pytorch = { torch: torchInfo.torch, transformers: torchInfo.transformers, peft: torchInfo.peft, gpu: torchInfo.gpu };
  save();
  console.log(`\nwrote ${file}`);
  process.exit(0);
}

if (process.argv[1] && /run\.js$/.test(process.argv[1])) main().catch((e: Error) => { console.error(e.message); process.exit(2); });
