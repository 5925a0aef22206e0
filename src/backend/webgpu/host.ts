/// <reference types="@webgpu/types" />
/**
 * Host-side caches for tfjs-backend-webgpu, installed once per backend.
 *
 * On the H200 a GPT-2-small LoRA step is host-bound (155 ms wall against
 * 68 ms of GPU kernel time), and much of the host time is Dawn calls that
 * return the same thing every step:
 *   - getBindGroupLayout(i) is memoised per pipeline (tfjs calls it per op,
 *     and each call crosses into Dawn and returns a new wrapper);
 *   - tfjs programs' uniform buffers are cached by content instead of being
 *     taken from the pool and rewritten with writeBuffer on every op (the
 *     same few hundred shape/stride combinations recur every step).
 * Caching tfjs programs' bind groups by (layout, buffers) was tried and
 * dropped: tfjs's pool does not hand out the same buffers step after step,
 * so it hit 5% at GPT-2 small. Our own kernels' bind groups are cached in
 * dispatch.ts, where they hit ~40% at notebook scale.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import type { WebGPUBackendLike } from './dispatch.js';

const UNIFORM_CACHE_MAX = 65536;
const installed = new WeakSet<object>();

export const hostStats = { uniformHits: 0, uniformMisses: 0 };

export function installHostCaches(be: WebGPUBackendLike): void {
  if (installed.has(be) || !flags.webgpuHostCache) return;
  installed.add(be);
  const device = be.device;

  // 1. one layout object per (pipeline, group)
  const proto = (globalThis as { GPUComputePipeline?: { prototype: GPUComputePipeline } }).GPUComputePipeline?.prototype;
  if (proto && !(proto as unknown as { __slMemo?: boolean }).__slMemo) {
    const orig = proto.getBindGroupLayout;
    const memo = new WeakMap<object, GPUBindGroupLayout[]>();
    proto.getBindGroupLayout = function (this: GPUComputePipeline, index: number) {
      let arr = memo.get(this);
      if (!arr) { arr = []; memo.set(this, arr); }
      return arr[index] ??= orig.call(this, index);
    };
    (proto as unknown as { __slMemo?: boolean }).__slMemo = true;
  }

  // 2. tfjs programs' uniforms by content (same layout rules as tfjs's makeUniforms)
  const uniformCache = new Map<string, { offset: number; size: number; buffer: GPUBuffer }>();
  (be as unknown as { makeUniforms: unknown }).makeUniforms = (programUniform: Array<{ type: string; data: number[] }>) => {
    let key = '';
    for (const d of programUniform) key += `${d.type[0]}${d.data.length ? d.data.join(',') : '1'};`;
    const hit = uniformCache.get(key);
    if (hit) { hostStats.uniformHits++; return hit; }
    hostStats.uniformMisses++;
    let currentOffset = 0, preLength = 0, maxAlign = 1;
    const offsets: number[] = [];
    for (const d of programUniform) {
      if (d.data.length === 0) d.data = [1];
      let align: number;
      switch (d.data.length) {
        case 1: align = 4; break;
        case 2: align = 8; break;
        case 3: case 4: case 5: case 6: align = 16; break;
        default: throw new Error(`Unsupported ${d.data.length}D shape`);
      }
      if (preLength === 5 || preLength === 6) align = 16;
      if (align > maxAlign) maxAlign = align;
      currentOffset = Math.ceil(currentOffset / align) * align;
      preLength = d.data.length;
      offsets.push(currentOffset);
      currentOffset += d.data.length * 4;
    }
    currentOffset = Math.ceil(currentOffset / maxAlign) * maxAlign;
    const buffer = device.createBuffer({ size: currentOffset, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    const ab = buffer.getMappedRange();
    programUniform.forEach((d, i) => {
      if (d.type === 'int32') new Int32Array(ab, offsets[i], d.data.length).set(d.data);
      else if (d.type === 'uint32') new Uint32Array(ab, offsets[i], d.data.length).set(d.data);
      else new Float32Array(ab, offsets[i], d.data.length).set(d.data);
    });
    buffer.unmap();
    const entry = { offset: 0, size: currentOffset, buffer };
    if (uniformCache.size < UNIFORM_CACHE_MAX) uniformCache.set(key, entry);
    return entry;
  };

  const batch = flags.webgpuSubmitBatch;
  if (batch > 0) tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', batch);
}
