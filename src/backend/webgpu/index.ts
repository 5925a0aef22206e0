/**
 * Fused WGSL kernels for the webgpu backend. useBackend('webgpu') calls
 * registerKernels(); ../ops.ts dispatches here when tf.getBackend() is
 * 'webgpu'.
 */
export { registerKernels, KERNELS } from './register.js';
export { tfjsBatchMatMul } from './matmul.js';
export * as webgpuOps from './ops.js';
export { dispatchStats, flush, webgpuBackend } from './dispatch.js';
export { chooseTile, nameOfTile, registerTile, setTileRule, tileNames } from './gemm.js';
export { hostStats } from './host.js';
export { poolStats, setPoolCap } from './pool.js';
