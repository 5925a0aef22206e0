/**
 * Host cost of two per-op steps of the webgpu path, without a GPU (Dawn's
 * null device; bench/NOTES.md entry 10):
 *   - createBindGroup with each form of a buffer entry (src/backend/webgpu/dispatch.ts passes the buffer itself);
 *   - cloning a tensor saved for the backward: tfjs's Engine.clone against src/backend/light-clone.ts.
 *   node dist/bench/host-micro.js
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { installLightClone } from '../src/backend/light-clone.js';

const best = (reps: number, f: () => number) => Math.min(...Array.from({ length: reps }, f));

async function bindGroups(): Promise<void> {
  const webgpu = await import('webgpu') as unknown as { create(f: string[]): GPU; globals: object };
  Object.assign(globalThis, webgpu.globals);
  // held in a variable: a collected GPU object takes Dawn's instance (and every device) with it
  const gpu = webgpu.create(['backend=null']);
  const adapter = await gpu.requestAdapter();
  const d = await adapter!.requestDevice();
  const code = `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
struct P { n: u32, m: u32 };
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < p.n) { o[g.x] = x[g.x] + y[g.x]; } }`;
  const layout = d.createComputePipeline({ layout: 'auto', compute: { module: d.createShaderModule({ code }), entryPoint: 'main' } }).getBindGroupLayout(0);
  const bufs = Array.from({ length: 64 }, () => d.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE }));
  const ub = d.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM });
  const forms: Record<string, (b: GPUBuffer) => GPUBindingResource> = {
    '{ buffer }': (b) => ({ buffer: b }),
    '{ buffer, offset, size }': (b) => ({ buffer: b, offset: 0, size: b.size }),
    'the buffer itself': (b) => b as unknown as GPUBindingResource,
  };
  const N = 20000;
  for (const [name, form] of Object.entries(forms)) {
    d.pushErrorScope('validation');
    const us = best(3, () => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        d.createBindGroup({ layout, entries: [0, 1, 2].map((k) => ({ binding: k, resource: form(bufs[(i + k * 7) % 64]) })).concat([{ binding: 3, resource: form(ub) }]) });
      }
      return ((performance.now() - t0) / N) * 1000;
    });
    const err = await d.popErrorScope();
    console.log(`createBindGroup, 4 entries as ${name}: ${us.toFixed(2)} µs${err ? ` (validation error: ${err.message})` : ''}`);
  }
  if (!gpu) throw new Error('unreachable');
}

async function clones(): Promise<void> {
  await tf.setBackend('cpu');
  const x = tf.ones([4, 4]);
  const engine = tf.engine() as unknown as { clone(t: tf.Tensor): tf.Tensor };
  const run = () => best(5, () => {
    const t0 = performance.now();
    tf.dispose(tf.grads((v: tf.Tensor) => { for (let i = 0; i < 2000; i++) engine.clone(v); return tf.sum(v); })([x]));
    return ((performance.now() - t0) / 2000) * 1000;
  });
  console.log(`tfjs Engine.clone inside tf.grads: ${run().toFixed(2)} µs a clone`);
  installLightClone();
  console.log(`light clone inside tf.grads: ${run().toFixed(2)} µs a clone`);
}

await bindGroups();
await clones();
process.exit(0);
