/// <reference types="@webgpu/types" />
/**
 * Our own GPUDevice for tfjs's WebGPU backend.
 *
 * tfjs's factory (tfjs-backend-webgpu/dist/base.js) asks for the adapter's
 * largest limits but enables only `timestamp-query`, so `subgroups`, which
 * Dawn offers on NVIDIA (size 32), stays off and no kernel can use it. This
 * factory creates the device with the features our kernels use where the
 * adapter offers them and hands it to tfjs's own WebGPUBackend class, so
 * everything else (buffer pool, command stream, tfjs kernels) is unchanged.
 *
 * Dawn's device toggles are set through create()'s flags, not the device
 * descriptor (the npm package has no DawnTogglesDescriptor): timestamp
 * quantization is a browser defence against timing attacks that rounds every
 * GPU timestamp to 65.5 µs on Dawn/Vulkan (issue 25), which made per-kernel
 * profiles of short kernels meaningless; a Node process has nothing to defend.
 *
 * SHARELORA_WEBGPU_DEVICE=tfjs keeps tfjs's factory and Dawn's defaults.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';

/** The features we enable when the adapter offers them (the first is tfjs's own; subgroups for the norm kernels' row sums (norm.ts, SHARELORA_WEBGPU_SUBGROUP_NORMS)). */
export const WANTED_FEATURES = ['timestamp-query', 'subgroups'] as const;

/** Limits raised to the adapter's: tfjs's six, plus those our kernels can grow into. */
const WANTED_LIMITS = [
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize', 'maxBufferSize',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage',
] as const;

/** Flags for Dawn's create(): toggles that must be set before the adapter exists. */
export function dawnFlags(): string[] {
  const enable: string[] = [], disable: string[] = [];
  // robustness off is opt-in (src/backend/index.ts says why)
  if (!flags.webgpuRobustness) enable.push('disable_robustness');
  // Dawn's API validation is most of createBindGroup's host cost (tens of µs a dispatch on a CPU host), and
  // at notebook scale host work per dispatch sets the step time; without it a wrong call corrupts instead of
  // failing with a message, so it is opt-in (our kernels are validated by the tests, which keep it on)
  if (!flags.webgpuValidation) enable.push('skip_validation');
  if (enable.length) enable.unshift('allow_unsafe_apis');
  if (flags.webgpuDevice === 'sharelora') disable.push('timestamp_quantization');
  return [
    ...(enable.length ? [`enable-dawn-features=${enable.join(',')}`] : []),
    ...(disable.length ? [`disable-dawn-features=${disable.join(',')}`] : []),
  ];
}

type Adapter = Pick<GPUAdapter, 'features' | 'limits' | 'requestDevice'> & { info?: unknown };

export function deviceDescriptor(adapter: Adapter): GPUDeviceDescriptor {
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  return { requiredFeatures, requiredLimits };
}

/**
 * Replaces tfjs's 'webgpu' backend factory with ours (same priority), unless
 * SHARELORA_WEBGPU_DEVICE=tfjs or a webgpu backend already runs. Call after
 * importing tfjs-backend-webgpu (which registers its factory) and before
 * tf.setBackend('webgpu').
 */
export async function registerDeviceFactory(): Promise<void> {
  if (flags.webgpuDevice !== 'sharelora') return;
  const engine = tf.engine() as unknown as { registry: Record<string, unknown>; registryFactory: Record<string, unknown> };
  if (engine.registry.webgpu || !engine.registryFactory.webgpu) return;
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu') as unknown as {
    WebGPUBackend: new (device: GPUDevice, info?: unknown) => tf.KernelBackend;
  };
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', async () => {
    const gpu = (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu;
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('no WebGPU adapter');
    const device = await adapter.requestDevice(deviceDescriptor(adapter));
    return new WebGPUBackend(device, (adapter as Adapter).info);
  }, 3);
}
