/**
 * tfjs-backend-wasm 4.22's Identity copies its input into a new heap block.
 * The engine runs Identity for every tensor a gradient saves (tf.clone), so
 * on wasm each training step copied every saved activation once more: on the
 * tiny GPT-2 of the CPU benchmark, 219 MB of a 315 MB step peak, inside a heap
 * that aborts at ~2 GB. Tensors are immutable in tfjs (a variable's assign
 * swaps its data id), so sharing the block with a reference count is what
 * the cpu and webgpu backends already do and what wasm's own Reshape does.
 */
import * as tf from '@tensorflow/tfjs-core';

type Args = { inputs: { x: tf.TensorInfo }; backend: { incRef(id: unknown): void } };

let patched = false;

export function patchWasmIdentity(): void {
  const orig = tf.getKernel('Identity', 'wasm');
  if (patched || !orig) return;
  patched = true;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ((args: Args) => {
      const { x } = args.inputs;
      if (x.dtype === 'string') return (orig.kernelFunc as unknown as (a: Args) => tf.TensorInfo)(args);
      args.backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as unknown as tf.KernelFunc,
  });
}
