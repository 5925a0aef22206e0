/**
 * tfjs-backend-wasm 4.22 runs BatchMatMul with transposeA/transposeB on a
 * slow path (measured on 2 cores: [256,1024]ᵀ·[256,1024] 3,745 ms vs 109 ms
 * with an explicit Transpose first; a ShareA step of the mini model 3.26 s ->
 * 1.51 s). Every backward pass and GPT-2's tied LM head use those flags, so
 * route them through the wasm Transpose kernel and the plain product.
 */
import * as tf from '@tensorflow/tfjs-core';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: { disposeData(id: unknown): void }; attrs: Record<string, unknown> };

let patched = false;

export function patchWasmMatMul(): void {
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (patched || !orig || !transpose) return;
  const run = (k: tf.KernelConfig, args: KernelArgs) => (k.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo)(args);
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    if (!attrs.transposeA && !attrs.transposeB) return run(orig, args);
    const swapLast = (x: tf.TensorInfo) => {
      const perm = x.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      return run(transpose, { inputs: { x }, backend, attrs: { perm } });
    };
    const a = attrs.transposeA ? swapLast(inputs.a) : inputs.a;
    const b = attrs.transposeB ? swapLast(inputs.b) : inputs.b;
    try {
      return run(orig, { inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
    }
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...orig, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  patched = true;
}
