/**
 * The switch ../ops.ts consults: our kernels when the active backend is
 * webgpu (registered on first use, so a bare tf.setBackend('webgpu') works
 * too), nothing otherwise. SHARELORA_WEBGPU_KERNELS=0 keeps webgpu on the
 * plain tfjs-core path, which the benchmark uses as its in-run baseline.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { registerKernels } from './register.js';
import * as ops from './ops.js';

export function fused(): typeof ops | undefined {
  if (tf.getBackend() !== 'webgpu' || !flags.webgpuKernels) return undefined;
  registerKernels();
  return ops;
}
