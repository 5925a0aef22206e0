/**
 * A lighter Engine.clone for the tensors ops save for their backward.
 *
 * tfjs-core's Engine.clone, which saveTensorsForBackwardMode and every
 * custom gradient's save() call once per saved tensor, runs a whole Identity
 * kernel through runKernel (kernel lookup, a scope, profiler hooks) only to
 * add a reference to the same data. A GPT-2 training step saves ~40 tensors
 * a layer this way (counted on lavapipe: 83 of a 2-layer step's 240 engine
 * ops were these Identity kernels), and at notebook scale the step is bound
 * by host work per op. This clone adds the reference directly (the tensor's
 * backend's incRef, as every backend's Identity kernel does) and records the
 * same tape node tfjs's clone records, so gradients and memory accounting
 * are unchanged. SHARELORA_LIGHT_CLONE=0 keeps tfjs's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from './flags.js';

interface EngineLike {
  state: { tensorInfo: Map<object, { backend: tf.KernelBackend }>; activeScope: { name: string } };
  backend: tf.KernelBackend;
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
  addTapeNode(name: string, inputs: Record<string, tf.Tensor>, outputs: tf.Tensor[], grad: (dy: tf.Tensor) => Record<string, () => tf.Tensor>, saved: tf.Tensor[], attrs: object): void;
  runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor;
  clone(x: tf.Tensor): tf.Tensor;
}

let installed = false;

export function installLightClone(): void {
  if (installed || !flags.lightClone) return;
  installed = true;
  const proto = Object.getPrototypeOf(tf.engine()) as EngineLike;
  proto.clone = function (this: EngineLike, x: tf.Tensor): tf.Tensor {
    const backend = this.state.tensorInfo.get(x.dataId)?.backend ?? this.backend;
    backend.incRef(x.dataId);
    const y = this.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, backend);
    // tfjs's clone records this node whether or not a kernel is running; its gradient is dy as float32
    const grad = (dy: tf.Tensor) => ({ x: () => this.runKernel('Cast', { x: dy }, { dtype: 'float32' }) });
    this.addTapeNode(this.state.activeScope.name, { x }, [y], grad, [], {});
    return y;
  };
}

/**
 * A second tensor on x's data, as tf.reshape(x, x.shape) makes it (the
 * backend's incRef and a new tensor) but without an engine op, for a
 * gradient function that hands one result to two inputs: tfjs's tape may
 * dispose one input's gradient when it accumulates another, so each needs
 * its own tensor. Only where no tape records (a first-order backward pass);
 * elsewhere, and with SHARELORA_LIGHT_CLONE=0, it is that reshape.
 */
export function alias<T extends tf.Tensor>(x: T): T {
  // gradientDepth > 0: a tape is recording (tfjs's isTapeOn), so the op must be on it
  const engine = tf.engine() as unknown as EngineLike & { state: { gradientDepth: number } };
  if (!flags.lightClone || engine.state.gradientDepth > 0) return tf.reshape(x, x.shape) as T;
  const backend = engine.state.tensorInfo.get(x.dataId)?.backend ?? engine.backend;
  backend.incRef(x.dataId);
  return engine.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, backend) as T;
}
