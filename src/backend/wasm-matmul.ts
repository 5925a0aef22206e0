/**
 * tfjs-backend-wasm 4.22 runs BatchMatMul on XNNPACK only for one [M, K]·[K, N] product without transposes; every
 * other case goes to a scalar triple loop (its batch_mat_mul_impl.cc, slow_batch_matmul). Three patches:
 *
 * - transposeA/transposeB go through the wasm Transpose kernel and the plain product (measured on 2 cores:
 *   [256,1024]ᵀ·[256,1024] 3,745 ms vs 109 ms with an explicit Transpose first; a ShareA step of the mini model
 *   3.26 s -> 1.51 s). Every backward pass and GPT-2's tied LM head use those flags.
 * - a batched product (attention's [B, H, T, D] scores and their gradients) runs as one XNNPACK product per batch
 *   entry on tensors registered over slices of the operands' and output's memory (no copies): [32, 8, 64, 32]
 *   · [32, 8, 32, 64] took 53 ms on the scalar loop (1.4 GFLOP/s), where one flat [2048, 256]·[256, 768] runs at
 *   18 GFLOP/s; attention's products were a third of a 6-layer GPT-2 training step on wasm. Where only A is
 *   batched, its rows are folded into one product instead.
 * - an operand transposed a second time under the same data id (a frozen weight in every backward's dy·Wᵀ) keeps its
 *   transpose until that data is freed, up to WASM_TRANSPOSED_MIB (or SHARELORA_GEMM_PRETRANSPOSE where lower): the
 *   transpose and XNNPACK's repacking of it (its operator is cached on the tensor's id) were two thirds of such a
 *   product at 64 tokens (8.8 ms against 2.9 untransposed, the mini model's [64, 256]·[1024, 256]ᵀ).
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from './flags.js';

type TensorData = { id: number; memoryOffset: number };
interface WasmBackend {
  disposeData(id: unknown, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(dataId: unknown): TensorData };
  dataIdNextNumber: number;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
}
type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };

let patched = false;
/** the wasm heap is capped at 2-4 GB: the cache of transposed operands takes at most this much of it */
const WASM_TRANSPOSED_MIB = 256;
/** data id -> its transpose (last two axes), for operands transposed twice; freed with the data (watchDisposal) */
const transposedCache = new Map<object, tf.TensorInfo>();
const transposedOnce = new WeakSet<object>();
let transposedBytes = 0;
/** the cache's size and use (tests) */
export const wasmTransposeStats = { hits: 0, kept: 0, freed: 0, entries: () => transposedCache.size, bytes: () => transposedBytes };

let cacheBackend: WasmBackend | undefined;
/** the backend's disposeData also frees the transpose kept for data it frees */
function watchDisposal(backend: WasmBackend): void {
  if (backend === cacheBackend) return;
  // a new wasm module (the kernel restarts an aborted one): the old one's transposes went with its heap
  transposedCache.clear();
  transposedBytes = 0;
  cacheBackend = backend;
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: unknown, force?: boolean): boolean => {
    const freed = dispose(dataId, force);
    const t = freed ? transposedCache.get(dataId as object) : undefined;
    if (t) {
      transposedCache.delete(dataId as object);
      transposedBytes -= tf.util.sizeFromShape(t.shape) * 4;
      wasmTransposeStats.freed++;
      dispose(t.dataId, true);
    }
    return freed;
  };
}
/**
 * below this many FMAs a batch entry, tfjs's scalar loop is as fast: an XNNPACK product costs ~5 µs to create, run
 * and delete (a 16 × 16 × 16 slice; the loop at 1.4 GFLOP/s takes ~6 µs for it)
 */
const MIN_SLICE_FMAS = 4096;
/** products routed each way (tests) */
export const wasmMatMulStats = { perBatch: 0, folded: 0 };
/** the C BatchMatMul of each wasm module (the kernel starts a fresh one after an abort) */
const wasmBatchMatMul = new WeakMap<WasmBackend, (...a: unknown[]) => void>();

const shapeBytes = (s: number[]) => new Uint8Array(new Int32Array(s).buffer);

/**
 * C = A·B for A [...outer, M, K], B [...outer, K, N] (the same outer dims) as one XNNPACK product an outer index.
 * Each product's A, B and C are tensor ids registered over the slices and disposed after it (which also frees the
 * XNNPACK operator the backend caches on B's id).
 */
function perBatch(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  const r = a.shape.length;
  const [M, K, N] = [a.shape[r - 2], a.shape[r - 1], b.shape[b.shape.length - 1]];
  const batch = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
  if (batch * M * N === 0) return out;
  wasmMatMulStats.perBatch++;
  let run = wasmBatchMatMul.get(backend);
  if (!run) {
    run = backend.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
    wasmBatchMatMul.set(backend, run);
  }
  const off = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
  const [ao, bo, co] = [off(a), off(b), off(out)];
  const aShape = shapeBytes([1, M, K]), bShape = shapeBytes([1, K, N]);
  const { tfjs } = backend.wasm;
  for (let n = 0; n < batch; n++) {
    const ids = [backend.dataIdNextNumber++, backend.dataIdNextNumber++, backend.dataIdNextNumber++];
    tfjs.registerTensor(ids[0], M * K, ao + n * M * K * 4);
    tfjs.registerTensor(ids[1], K * N, bo + n * K * N * 4);
    tfjs.registerTensor(ids[2], M * N, co + n * M * N * 4);
    try {
      run(ids[0], aShape, 3, ids[1], bShape, 3, false, false, ids[2]);
    } finally {
      for (const id of ids) tfjs.disposeData(id);
    }
  }
  return out;
}

export function patchWasmMatMul(): void {
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  const reshape = tf.getKernel('Reshape', 'wasm');
  if (patched || !orig || !transpose || !reshape) return;
  const run = (k: tf.KernelConfig, args: KernelArgs) => (k.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo)(args);
  const plain = (backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo, attrs: Record<string, unknown>): tf.TensorInfo => {
    const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA), batchB = tf.util.sizeFromShape(outerB);
    const [M, K] = a.shape.slice(-2), N = b.shape[b.shape.length - 1];
    if (a.dtype === 'float32' && b.dtype === 'float32' && batchA > 1) {
      if (batchB === 1) {
        // B is one matrix: A's batch is more rows of one product, [batch·M, K]·[K, N]
        wasmMatMulStats.folded++;
        const a2 = run(reshape, { inputs: { x: a }, backend, attrs: { shape: [batchA * M, K] } });
        const b2 = run(reshape, { inputs: { x: b }, backend, attrs: { shape: b.shape.slice(-2) } });
        try {
          const c = run(orig, { inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
          return { ...c, shape: [...outerA, M, N] };
        } finally {
          backend.disposeData(a2.dataId);
          backend.disposeData(b2.dataId);
        }
      }
      if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]) && M * K * N >= MIN_SLICE_FMAS) return perBatch(backend, a, b);
    }
    return run(orig, { inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
  };
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const owned: tf.TensorInfo[] = [];
    const swapLast = (x: tf.TensorInfo) => {
      const hit = transposedCache.get(x.dataId as object);
      if (hit) { wasmTransposeStats.hits++; return hit; }
      const perm = x.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      const t = run(transpose, { inputs: { x }, backend, attrs: { perm } });
      const bytes = tf.util.sizeFromShape(x.shape) * 4;
      const cap = Math.min(WASM_TRANSPOSED_MIB, flags.gemmPretransposeMiB) * 2 ** 20;
      if (x.dtype === 'float32' && transposedOnce.has(x.dataId as object) && transposedBytes + bytes <= cap) {
        watchDisposal(backend);
        transposedCache.set(x.dataId as object, t);
        transposedBytes += bytes;
        wasmTransposeStats.kept++;
      } else {
        transposedOnce.add(x.dataId as object);
        owned.push(t);
      }
      return t;
    };
    const a = attrs.transposeA ? swapLast(inputs.a) : inputs.a;
    const b = attrs.transposeB ? swapLast(inputs.b) : inputs.b;
    try {
      return plain(backend, a, b, attrs);
    } finally {
      for (const t of owned) backend.disposeData(t.dataId);
    }
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...orig, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  patched = true;
}
