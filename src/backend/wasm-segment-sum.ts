/**
 * tfjs-backend-wasm 4.22 has no UnsortedSegmentSum, the gradient of Gather:
 * every trainable embedding (fullFineTune, pretraining, modulesToSave of an
 * embedding) failed on wasm with "Kernel 'UnsortedSegmentSum' not registered".
 * The sum runs here in JS over the wasm heap's data: it is one pass over the
 * gradient rows, small next to the step's matrix products.
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackend {
  readSync(dataId: unknown): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array | Int32Array): tf.TensorInfo;
}
type Args = { inputs: { x: tf.TensorInfo; segmentIds: tf.TensorInfo }; backend: WasmBackend; attrs: { numSegments: number } };

/** out[s, …] = Σ_{i: ids[i] = s} x[i, …]; ids outside [0, numSegments) are dropped, as tfjs's cpu kernel does */
export function segmentSum(x: ArrayLike<number>, ids: ArrayLike<number>, rows: number, numSegments: number, out: Float32Array | Int32Array): void {
  const inner = rows === 0 ? 0 : x.length / rows;
  for (let i = 0; i < rows; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner, dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j]!;
  }
}

let registered = false;

export function registerWasmSegmentSum(): void {
  if (registered || tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  registered = true;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ((args: Args) => {
      const { x, segmentIds } = args.inputs;
      const numSegments = args.attrs.numSegments;
      if (segmentIds.shape.length !== 1) throw new Error(`UnsortedSegmentSum (wasm): segment ids of rank ${segmentIds.shape.length}; only rank 1 (the gradient of a Gather on axis 0) is supported`);
      const rows = segmentIds.shape[0]!;
      const shape = [numSegments, ...x.shape.slice(1)];
      const size = shape.reduce((a, b) => a * b, 1);
      const out = x.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
      segmentSum(args.backend.readSync(x.dataId), args.backend.readSync(segmentIds.dataId), rows, numSegments, out);
      return args.backend.makeOutput(shape, x.dtype, undefined, out);
    }) as unknown as tf.KernelFunc,
  });
}
