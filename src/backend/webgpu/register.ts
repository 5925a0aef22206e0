/**
 * Registers our kernels with tfjs for the webgpu backend, so they run
 * through engine().runKernel like any built-in op (ops.ts calls them by the
 * names below).
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { activation } from './activation.js';
import { attentionBackward, attentionForward } from './attention.js';
import { xentBackward, xentForward } from './cross-entropy.js';
import { webgpuBackend, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { installLightClone } from '../light-clone.js';
import { installHostCaches } from './host.js';
import { installPoolCap } from './pool.js';
import { watchDevice } from './errors.js';
import { installReplayHooks } from './replay.js';
import { replaceBatchMatMul, slMatMul } from './matmul.js';
import { addNormBackward, addNormForward, columnSum, normBackward, normForward } from './norm.js';
import { adamwInPlaceKernel, adamwKernel, adamwManyKernel, gradStatsKernel, gradStatsManyKernel, stepControlKernel } from './optim.js';
import { batchCheckKernel } from './batch-check.js';

export const KERNELS = {
  matmul: 'ShareLoraMatMul',
  normFwd: 'ShareLoraNorm',
  normBwd: 'ShareLoraNormGrad',
  addNormFwd: 'ShareLoraAddNorm',
  addNormBwd: 'ShareLoraAddNormGrad',
  act: 'ShareLoraActivation',
  attn: 'ShareLoraAttention',
  attnGrad: 'ShareLoraAttentionGrad',
  gradStats: 'ShareLoraGradStats',
  batchCheck: 'ShareLoraBatchCheck',
  adamw: 'ShareLoraAdamW',
  gradStatsMany: 'ShareLoraGradStatsMany',
  adamwMany: 'ShareLoraAdamWMany',
  adamwInPlace: 'ShareLoraAdamWInPlace',
  stepControl: 'ShareLoraStepControl',
  xent: 'ShareLoraSoftmaxXent',
  xentGrad: 'ShareLoraSoftmaxXentGrad',
  colSum: 'ShareLoraColumnSum',
} as const;

let registered = false;

export function registerKernels(opts: { replaceBatchMatMul?: boolean } = {}): void {
  if (tf.getBackend() === 'webgpu') {
    installHostCaches(webgpuBackend()); installPoolCap(webgpuBackend()); watchDevice(webgpuBackend());
    // bind groups must remember their buffers from the first one on: ours are cached across steps
    installReplayHooks(webgpuBackend());
  }
  // engine-wide, but correct on every backend (the tensor's own backend takes the reference)
  installLightClone();
  if (registered) return;
  registered = true;
  const reg = (kernelName: string, kernelFunc: (a: { inputs: KernelInputs; attrs: KernelAttrs }) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  reg(KERNELS.matmul, slMatMul);
  reg(KERNELS.normFwd, normForward);
  reg(KERNELS.normBwd, normBackward);
  reg(KERNELS.colSum, columnSum);
  reg(KERNELS.addNormFwd, addNormForward);
  reg(KERNELS.addNormBwd, addNormBackward);
  reg(KERNELS.act, activation);
  reg(KERNELS.attn, attentionForward);
  reg(KERNELS.attnGrad, attentionBackward);
  reg(KERNELS.gradStats, gradStatsKernel);
  reg(KERNELS.batchCheck, batchCheckKernel);
  reg(KERNELS.adamw, adamwKernel);
  reg(KERNELS.gradStatsMany, gradStatsManyKernel);
  reg(KERNELS.adamwMany, adamwManyKernel);
  reg(KERNELS.adamwInPlace, adamwInPlaceKernel);
  reg(KERNELS.stepControl, stepControlKernel);
  reg(KERNELS.xent, xentForward);
  reg(KERNELS.xentGrad, xentBackward);
  if (opts.replaceBatchMatMul ?? flags.webgpuMatmul !== 'tfjs') replaceBatchMatMul();
}
