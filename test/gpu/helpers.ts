/**
 * Shared set-up for the WebGPU kernel tests: bring up the webgpu backend
 * (Dawn; lavapipe on a CPU-only machine) or say why not, and compare our
 * kernels with the tfjs-core fallback run on the cpu backend.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend/index.js';
import type { Batch } from '../../src/data/batch.js';
import * as ref from '../../src/backend/ops.js';
import { webgpuOps as ours } from '../../src/backend/webgpu/index.js';
import { splitStats } from '../../src/backend/webgpu/splitk.js';
import { gemmSharedBytes, tileNamed } from '../../src/backend/webgpu/gemm.js';
import { webgpuBackend } from '../../src/backend/webgpu/dispatch.js';
import { gpuHealth } from '../../src/backend/webgpu/errors.js';

let why: string | undefined;
let ready: Promise<string | undefined> | undefined;

/** undefined when webgpu is up; else the reason to skip. */
export function webgpuUnavailable(): Promise<string | undefined> {
  ready ??= (async () => {
    try {
      await useBackend('webgpu');
      return undefined;
    } catch (e) {
      why = `no WebGPU adapter (${(e as Error).message.split('\n')[0]}); on Debian install lavapipe: ` +
        'apt-get install -t bookworm-backports mesa-vulkan-drivers';
      return why;
    }
  })();
  return ready;
}

/**
 * n seeded two-class batches of B rows × T tokens (ids 1–300) for the training-path tests (step replay, pipelining):
 * the same seed gives the same batches, so two fits can be compared update by update.
 */
export function spamLikeBatches(n: number, B: number, T: number, seed: number): Batch[] {
  let s = seed;
  const rnd = (k: number) => { s = (s * 1103515245 + 12345) % 2147483648; return s % k; };
  return Array.from({ length: n }, () => {
    const inputIds = Array.from({ length: B }, () => Array.from({ length: T }, () => 1 + rnd(300)));
    // right padding on some rows, so the mask matters
    const attentionMask = inputIds.map((_, i) => Array.from({ length: T }, (_, t) => (t < T - (i % 3) ? 1 : 0)));
    return { inputIds, attentionMask, labels: inputIds.map(() => rnd(2)) };
  });
}

/** Let the process exit: Dawn keeps it alive while navigator.gpu is referenced. */
export function releaseGPU(): void {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav && 'gpu' in nav) delete nav.gpu;
}

/** Deterministic normal-ish samples (sum of uniforms), fresh per seed. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const u = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * 1.7320508 * scale;
  return out;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export interface Case {
  /** input arrays with shapes and dtypes */
  inputs: Array<{ data: Float32Array | Int32Array; shape: number[]; dtype?: 'float32' | 'int32' }>;
  /** indices of inputs to differentiate */
  wrt: number[];
}

/**
 * Runs f on the cpu backend (reference: the fallback) and g on webgpu (ours)
 * and returns the forward output and the gradients of sum(out ∘ R) for a
 * fixed random R, as plain arrays.
 */
export async function forwardAndGrads(
  backend: 'cpu' | 'webgpu', f: (...xs: tf.Tensor[]) => tf.Tensor, c: Case, seed = 7,
): Promise<{ out: Float32Array; grads: Float32Array[] }> {
  await tf.setBackend(backend);
  const xs = c.inputs.map((i) => tf.tensor(i.data, i.shape, i.dtype ?? 'float32'));
  const out = f(...xs);
  const R = tf.tensor(randn(out.size, seed), out.shape);
  const outData = await out.data() as Float32Array;
  let grads: Float32Array[] = [];
  if (c.wrt.length) {
    const gfun = tf.grads((...ws: tf.Tensor[]) => {
      const all = xs.slice();
      c.wrt.forEach((idx, j) => { all[idx] = ws[j]; });
      return tf.sum(tf.mul(f(...all), R));
    });
    const gs = gfun(c.wrt.map((i) => xs[i]));
    grads = await Promise.all(gs.map(async (g) => await g.data() as Float32Array));
    tf.dispose(gs);
  }
  tf.dispose([...xs, out, R]);
  return { out: outData, grads };
}

/** an input of `shape` filled with randn(seed, scale) */
export const f32 = (shape: number[], seed: number, scale = 1) => ({ data: randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape });

/** g on webgpu against f on cpu: the forward output and every gradient of `c` within `tol` relative error */
export async function checkAgainstCpu(name: string, f: (...x: tf.Tensor[]) => tf.Tensor, g: (...x: tf.Tensor[]) => tf.Tensor, c: Case, tol = 1e-4): Promise<void> {
  const want = await forwardAndGrads('cpu', f, c);
  const got = await forwardAndGrads('webgpu', g, c);
  const e = relErr(got.out, want.out);
  assert.ok(e < tol, `${name}: forward rel err ${e}`);
  want.grads.forEach((wg, i) => {
    const eg = relErr(got.grads[i], wg);
    assert.ok(eg < tol, `${name}: grad of input ${c.wrt[i]} rel err ${eg}`);
  });
}

/** B, H, Hkv, T, D, causal, key-masked */
export type AttentionCase = [number, number, number, number, number, boolean, boolean];
type Check = (name: string, f: (...x: tf.Tensor[]) => tf.Tensor, g: (...x: tf.Tensor[]) => tf.Tensor, c: Case) => Promise<void>;

/**
 * One attention case through `check` (ours on webgpu against the reference on cpu), inputs seeded from `seed` on:
 * attention(q, k, v) with every gradient; where H = Hkv also attentionPacked, and with `rows` attentionPackedRows.
 * The last rows of batch b are key-masked (3 + 5b of them) when masked.
 */
export async function checkAttentionCase(check: Check, [B, H, Hkv, T, D, causal, masked]: AttentionCase, seed: number, o: { rows?: boolean } = {}): Promise<void> {
  const km = new Int32Array(B * T).fill(1);
  if (masked) for (let b = 0; b < B; b++) for (let j = 0; j < b * 5 + 3; j++) km[b * T + T - 1 - j] = 0;
  const inputs: Case['inputs'] = [f32([B, T, H * D], seed), f32([B, T, Hkv * D], seed + 1), f32([B, T, Hkv * D], seed + 2)];
  if (masked) inputs.push({ data: km, shape: [B, T], dtype: 'int32' });
  const opts = (m?: tf.Tensor) => ({ heads: H, kvHeads: Hkv, causal, keyMask: m as tf.Tensor2D | undefined, scale: 1 / Math.sqrt(D) });
  const mk = (impl: typeof ref.attention) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m?: tf.Tensor) =>
    impl(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts(m));
  await check(`attention B${B} H${H}/${Hkv} T${T} D${D} causal=${causal} masked=${masked}`, mk(ref.attention), mk(ours.attention), { inputs, wrt: [0, 1, 2] });
  if (H !== Hkv) return;
  const packed: Case['inputs'] = [f32([B, T, 3 * H * D], seed + 3), ...inputs.slice(3)];
  const mp = (impl: typeof ref.attentionPacked) => (qkv: tf.Tensor, m?: tf.Tensor) => impl(qkv as tf.Tensor3D, opts(m));
  await check(`attentionPacked B${B} H${H} T${T} D${D} causal=${causal} masked=${masked}`, mp(ref.attentionPacked), mp(ours.attentionPacked), { inputs: packed, wrt: [0] });
  if (!o.rows) return;
  const rows: Case['inputs'] = [f32([B * T, 3 * H * D], seed + 4), ...inputs.slice(3)];
  const mr = (impl: typeof ref.attentionPackedRows) => (qkv: tf.Tensor, m?: tf.Tensor) => impl(qkv as tf.Tensor2D, T, opts(m));
  await check(`attentionPackedRows B${B} H${H} T${T} D${D} causal=${causal} masked=${masked}`, mr(ref.attentionPackedRows), mr(ours.attentionPackedRows), { inputs: rows, wrt: [0] });
}

/** M, N, K, transA, transB */
export type GemmCase = readonly [number, number, number, boolean, boolean];
/** both transposed layouts on odd sizes (the library's tiles run the plain layout in every forward of the kernel and reference tests) */
export const TILE_CASES: readonly GemmCase[] = [[131, 67, 45, true, false], [64, 128, 32, false, true]];
/** the plain layout over several tiles of each size */
export const PLAIN_CASE: readonly GemmCase[] = [[300, 260, 70, false, false]];

/**
 * Our GEMM through ShareLoraMatMul with a forced tile against tf.matMul on
 * cpu, on unaligned (scalar loads/stores) and aligned (vec4) shapes and both
 * transposes; returns the failures.
 */
export async function tileDisagreements(tiles: string[], skipped: string[] = [], cases: readonly GemmCase[] = TILE_CASES): Promise<string[]> {
  const bad: string[] = [];
  for (const tile of tiles) {
    await tf.setBackend('webgpu');
    // a tile whose shared memory this device does not allow (the 48 KB tiles on lavapipe's 32 KB) is reported
    // in `skipped`, not compared: its dispatch throws before anything runs (dispatch.ts, workgroupBytes)
    const bytes = gemmSharedBytes(tileNamed(tile, 'tileDisagreements'), false);
    if (bytes > webgpuBackend().device.limits.maxComputeWorkgroupStorageSize) { skipped.push(`${tile} (${bytes} bytes of workgroup memory)`); continue; }
    const before = (await gpuHealth(webgpuBackend())).errors;
    for (const [M, N, K, ta, tb] of cases) {
      const a = randn(M * K, M + K), b = randn(K * N, N);
      await tf.setBackend('cpu');
      const want = await tf.matMul(tf.tensor(a, ta ? [K, M] : [M, K]), tf.tensor(b, tb ? [N, K] : [K, N]), ta, tb).data();
      await tf.setBackend('webgpu');
      const got = await tf.engine().runKernel('ShareLoraMatMul', { a: tf.tensor(a, ta ? [K, M] : [M, K]), b: tf.tensor(b, tb ? [N, K] : [K, N]) }, { transA: ta, transB: tb, tile } as never) as tf.Tensor;
      const e = relErr(await got.data(), want);
      if (!(e < 1e-5)) bad.push(`tile ${tile} ${M}x${N}x${K} ${ta}${tb}: rel err ${e}`);
    }
    // an invalid pipeline is only an asynchronous error event, and its output buffer may be a pooled one that
    // already holds the right answer from the tile before (it did once: the 48 KB tiles "passed" on lavapipe)
    const health = await gpuHealth(webgpuBackend());
    if (health.errors > before) bad.push(`tile ${tile}: ${health.errors - before} GPU error(s), first: ${health.first}`);
  }
  return bad;
}

/** M, N, K, transA, transB, tile, K-slices (1: none), epilogue ('' | 'bias' | 'lrT' | 'lrN', or 'lrX+bias'), rank (3) */
export type EpilogueCase = readonly [number, number, number, boolean, boolean, string, number, string, number?];

/** the library's GEMM tiles (webgpu/gemm.ts), each checked by tileDisagreements */
export const LIBRARY_TILES = ['128x128', '64x64t4', '32x32'];

/**
 * The epilogue cases each staging of the K loop (rolled, SHARELORA_GEMM_UNROLL=0; unrolled, the default) is
 * checked on: bias and s·U·V on 128×128 and 64×64, both V layouts, and a split-K partial.
 */
export const STAGING_EPILOGUE_CASES: readonly EpilogueCase[] = [
  [150, 136, 200, false, false, '128x128', 1, 'bias'], [131, 67, 90, true, true, '128x128', 1, 'lrT'],
  [70, 132, 300, false, true, '64x64t4', 1, 'lrN+bias'], [67, 45, 1000, true, false, '128x128', 3, 'lrT+bias'],
];

/**
 * alpha·op(A)·op(B) (+ bias) (+ s·U·V) through ShareLoraMatMul with a forced tile and split count, against
 * the same on cpu (alpha 0.5, rank 3 unless the case names one, s 0.7); returns the failures.
 */
export async function epilogueDisagreements(cases: readonly EpilogueCase[]): Promise<string[]> {
  const bad: string[] = [];
  for (const [M, N, K, ta, tb, tile, S, epi, rank] of cases) {
    const r = rank ?? 3, s = 0.7;
    const a = randn(M * K, M + K), b = randn(K * N, N), bias = randn(N, 5), u = randn(M * r, 6), v = randn(N * r, 7);
    const aShape = ta ? [K, M] : [M, K], bShape = tb ? [N, K] : [K, N];
    const vT = epi.startsWith('lrT');
    await tf.setBackend('cpu');
    let want = tf.mul(tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb), 0.5);
    if (epi.includes('bias')) want = tf.add(want, tf.tensor(bias, [N]));
    if (epi.startsWith('lr')) want = tf.add(want, tf.mul(tf.matMul(tf.tensor(u, [M, r]), tf.tensor(v, vT ? [N, r] : [r, N]), false, vT), s));
    const wantData = await want.data();
    await tf.setBackend('webgpu');
    const inputs: Record<string, tf.Tensor> = { a: tf.tensor(a, aShape), b: tf.tensor(b, bShape) };
    if (epi.includes('bias')) inputs.bias = tf.tensor(bias, [N]);
    if (epi.startsWith('lr')) { inputs.u = tf.tensor(u, [M, r]); inputs.v = tf.tensor(v, vT ? [N, r] : [r, N]); }
    const got = tf.engine().runKernel('ShareLoraMatMul', inputs, { transA: ta, transB: tb, alpha: 0.5, tile, splitK: S, lrScale: s, lrVT: vT } as never) as tf.Tensor;
    const e = relErr(await got.data(), wantData);
    if (!(e < 1e-5)) bad.push(`${tile} ${M}x${N}x${K} ${ta}${tb} S=${S} ${epi} r=${r}: rel err ${e}`);
  }
  return bad;
}

/**
 * A plain tf.matMul of M × K by K × N on webgpu, through whatever tile the active rule picks, agrees with the cpu
 * backend and was not split (the tile-rule tests: a product the rule moves to 64×64 runs there, whole).
 */
export async function assertUnsplitMatMulAgrees(M: number, N: number, K: number, seed: number): Promise<void> {
  const a = randn(M * K, seed), b = randn(K * N, seed + 1);
  await tf.setBackend('webgpu');
  const before = splitStats.products;
  const got = await tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N])).data();
  assert.equal(splitStats.products, before, 'not split');
  await tf.setBackend('cpu');
  const want = await tf.matMul(tf.tensor(a, [M, K]), tf.tensor(b, [K, N])).data();
  await tf.setBackend('webgpu');
  assert.ok(relErr(got, want) < 1e-5, `rel err ${relErr(got, want)}`);
}

/** Asserts every parameter of `b` within `tol` (absolute, elementwise) of the same-named one of `a`. */
export function assertParamsClose(a: Map<string, Float32Array>, b: Map<string, Float32Array>, tol: number): void {
  for (const [n, p] of a) {
    const q = b.get(n)!;
    let worst = 0;
    for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i] - q[i]));
    assert.ok(worst <= tol, `${n}: parameters differ by ${worst}`);
  }
}
