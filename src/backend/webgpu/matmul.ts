/**
 * The GEMM of gemm.ts as tfjs kernels: our own ShareLoraMatMul (bias and
 * low-rank epilogues, a forced tile for the benchmark), and a replacement for
 * tfjs's webgpu BatchMatMul so that plain tf.matMul calls (the tied LM head)
 * take the same GEMM.
 */
import * as tf from '@tensorflow/tfjs-core';
import { elementCount, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { transposedFrozen } from './frozen.js';
import { gemm, tileNamed, type GemmArgs } from './gemm.js';
import { THIN_MAX } from './thin.js';
import type { ActKind } from './activation.js';

/**
 * B read transposed and a frozen weight: read its transposed copy along rows
 * instead (frozen.ts). Batched B (attention) and thin products keep theirs.
 */
function rowMajorB(g: GemmArgs): GemmArgs {
  if (!g.transB || g.strideB !== 0 || Math.min(g.M, g.N) <= THIN_MAX || g.hsB !== undefined || g.ldb !== undefined) return g;
  const c = transposedFrozen(g.b, g.N, g.K);
  return c ? { ...g, b: c.t, transB: false, ldb: c.ld, padB: true } : g;
}

/**
 * Our GEMM as a kernel: a [.., M, K] (or [.., K, M] with transA), b likewise;
 * optional bias [N]; optional low-rank u [M, r] and v ([N, r] if lrVT else [r, N]);
 * attrs.actA: act(a) in place of a; input h [M, N] with attrs.dAct: the output times act'(h).
 */
export function slMatMul({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { a, b, bias, u, v, h } = inputs;
  const transA = !!attrs.transA, transB = !!attrs.transB;
  const ra = a.shape.length, rb = b.shape.length;
  const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchA = elementCount(a) / (M * K), batchB = elementCount(b) / (K * N);
  const batch = (attrs.batch as number) ?? Math.max(batchA, batchB);
  const outShape = (attrs.outShape as number[]) ?? (ra > 2 ? [...a.shape.slice(0, -2), M, N] : [M, N]);
  const tile = attrs.tile ? tileNamed(attrs.tile as string, 'the tile attribute') : undefined;
  return gemm(rowMajorB({
    a, b, M, N, K, transA, transB, batch,
    strideA: batchA === 1 ? 0 : M * K, strideB: batchB === 1 ? 0 : K * N,
    bH: attrs.bH as number | undefined, bHkv: attrs.bHkv as number | undefined, bRep: attrs.bRep as number | undefined,
    alpha: (attrs.alpha as number) ?? 1,
    bias,
    lowRank: u && v ? { u, v, r: u.shape[u.shape.length - 1], s: attrs.lrScale as number, vT: !!attrs.lrVT } : undefined,
    outShape, tile, splitK: attrs.splitK as number | undefined,
    actA: (attrs.actA as ActKind | undefined) || undefined,
    dAct: h ? { h, kind: attrs.dAct as ActKind } : undefined,
  }));
}

let originalBatchMatMul: tf.KernelConfig | undefined;

/**
 * tfjs's BatchMatMul for webgpu, routed to our GEMM when the batch dims are
 * equal or one side is unbatched (every matMul the models issue, e.g. the
 * tied LM head); anything else goes to the original kernel.
 */
function batchMatMul(args: { inputs: KernelInputs; attrs: KernelAttrs; backend: tf.KernelBackend }): tf.TensorInfo {
  const { a, b } = args.inputs;
  const transA = !!args.attrs.transposeA, transB = !!args.attrs.transposeB;
  const ra = a.shape.length, rb = b.shape.length;
  const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  const bA = a.shape.slice(0, -2), bB = b.shape.slice(0, -2);
  const nA = bA.reduce((x, y) => x * y, 1), nB = bB.reduce((x, y) => x * y, 1);
  const same = bA.length === bB.length && bA.every((d, i) => d === bB[i]);
  const ok = a.dtype === 'float32' && b.dtype === 'float32' && (same || nA === 1 || nB === 1) && M * N * K > 0;
  if (!ok) return originalBatchMatMul!.kernelFunc(args as never) as tf.TensorInfo;
  const batchShape = nA >= nB ? bA : bB;
  return gemm(rowMajorB({
    a, b, M, N, K, transA, transB, batch: Math.max(nA, nB),
    strideA: nA === 1 ? 0 : M * K, strideB: nB === 1 ? 0 : K * N,
    outShape: [...batchShape, M, N],
  }));
}

/** tfjs's own webgpu BatchMatMul (for the benchmark's comparison); undefined until registerKernels replaced it. */
export function tfjsBatchMatMul(): tf.KernelConfig | undefined {
  return originalBatchMatMul;
}

/** Routes tf.matMul on webgpu to batchMatMul above; keeps tfjs's kernel for what ours does not take. */
export function replaceBatchMatMul(): void {
  originalBatchMatMul = tf.getKernel('BatchMatMul', 'webgpu');
  if (originalBatchMatMul) {
    tf.unregisterKernel('BatchMatMul', 'webgpu');
    tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'webgpu', kernelFunc: batchMatMul as unknown as tf.KernelFunc });
  }
}
