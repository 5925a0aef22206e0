/// <reference types="@webgpu/types" />
/**
 * Our own dispatch path into tfjs-backend-webgpu's command stream.
 *
 * tfjs's runWebGPUProgram gives a program one output, read-only inputs, and
 * rebuilds a shader key, a uniform buffer and a bind group on every call.
 * Fused kernels need several outputs (a norm's y plus its row statistics),
 * and per-op host cost is what dominated the plain tfjs step on the H200
 * (~230 ms of a 673 ms step), so this path:
 *   - takes WGSL we write whole, with explicit bindings (outputs first,
 *     read_write; then inputs, read; then one uniform struct);
 *   - caches pipelines by our key and uniform buffers by their bytes (a
 *     training step repeats the same shapes, so after the first step no
 *     uniform buffer is created or written);
 *   - allocates outputs from the backend's buffer pool and records into the
 *     backend's own encoder/pass, so ordering with tfjs's kernels, buffer
 *     reuse and deferred disposal behave exactly as for built-in kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';

/** The parts of tfjs-backend-webgpu's WebGPUBackend we drive (several are private in its d.ts). */
export interface WebGPUBackendLike {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(id: object): { resource?: unknown; dtype: string; shape: number[]; values?: unknown } | undefined; has(id: object): boolean };
  bufferManager: { numBytesUsed: number; numBytesAllocated: number; acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): GPUBuffer; releaseBuffer(b: GPUBuffer, reuse?: boolean): void };
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  activeTimers?: Array<{ name: string; query: Promise<number> }> | null;
  supportTimestampQuery: boolean;
  querySet: GPUQuerySet | null;
  querySetCount: number;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  getQueryTime(): Promise<number>;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function webgpuBackend(): WebGPUBackendLike {
  return tf.backend() as unknown as WebGPUBackendLike;
}

export type UniformField = [name: string, type: 'i32' | 'u32' | 'f32', value: number];

/** What tfjs hands a kernelFunc: tensors and attributes by name. */
export type KernelInputs = Record<string, tf.TensorInfo>;
export type KernelAttrs = Record<string, unknown>;

export const elementCount = (t: tf.TensorInfo): number => t.shape.reduce((a, b) => a * b, 1);

export interface KernelSpec {
  /** unique per generated source: every constant baked into the WGSL must be in the key */
  key: string;
  /** WGSL body: everything after the generated bindings; entry point `main` */
  body: () => string;
  /** WGSL `enable` extensions the body needs (e.g. `subgroups`), written ahead of the bindings */
  enables?: string[];
  /** names of output bindings, in order; element types default to f32 */
  outputs: Array<{ name: string; type?: string }>;
  inputs: Array<{ name: string; type?: string }>;
  /**
   * bytes of var<workgroup> memory the body declares, where it may exceed WebGPU's guaranteed 16 KiB: checked
   * against the device's limit before the pipeline is made, since an over-limit pipeline is only reported as an
   * asynchronous validation error and its dispatch silently does nothing
   */
  workgroupBytes?: number;
}

const pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout; nUniforms: number }>();
const uniformCache = new Map<string, GPUBuffer>();
const UNIFORM_CACHE_MAX = 8192;

/**
 * Bind groups by (kernel, buffers). createBindGroup is the largest single
 * host cost of a dispatch (10–25 µs through Dawn's Node binding, bench/NOTES.md
 * entry 10). tfjs's pool hands a step's tensors buffers in an order that
 * repeats only partly, so this hits about 40% at notebook scale (counted on
 * the null device) and ~5% at GPT-2 small (run 1, where the step is GPU-bound
 * and the miss costs only the key); SHARELORA_WEBGPU_BINDGROUP_CACHE=0 turns it off.
 * A destroyed buffer's entries are never hit again (a new buffer is a new
 * object); the map is cleared when full.
 */
const bindGroups = new Map<string, GPUBindGroup>();
/** our dispatches and the bind groups they created, since the process started (the benchmark reports them) */
export const dispatchStats = { dispatches: 0, bindGroupsCreated: 0 };
const BIND_GROUP_CACHE_MAX = 16384;
const bufferIds = new WeakMap<object, number>();
let nextBufferId = 0;
const bufferId = (b: object): number => {
  let id = bufferIds.get(b);
  if (id === undefined) { id = nextBufferId++; bufferIds.set(b, id); }
  return id;
};

function bindingsSource(spec: KernelSpec, uniforms: UniformField[]): string {
  const lines: string[] = [];
  let b = 0;
  for (const o of spec.outputs) lines.push(`@group(0) @binding(${b++}) var<storage, read_write> ${o.name} : array<${o.type ?? 'f32'}>;`);
  for (const i of spec.inputs) lines.push(`@group(0) @binding(${b++}) var<storage, read> ${i.name} : array<${i.type ?? 'f32'}>;`);
  if (uniforms.length) {
    lines.push(`struct Params { ${uniforms.map(([n, t]) => `${n} : ${t},`).join(' ')} };`);
    lines.push(`@group(0) @binding(${b}) var<uniform> P : Params;`);
  }
  return lines.join('\n');
}

// Pipelines and uniform buffers belong to one GPUDevice: after a lost device
// is replaced (resetBackend), the caches start over on the new one.
let cacheDevice: GPUDevice | undefined;
function forDevice(be: WebGPUBackendLike): void {
  if (be.device === cacheDevice) return;
  pipelines.clear();
  uniformCache.clear();
  bindGroups.clear();
  cacheDevice = be.device;
}

function pipelineFor(be: WebGPUBackendLike, spec: KernelSpec, uniforms: UniformField[]) {
  // one uniform layout per key (each kernel's key names every variant of its
  // source); checked by field count so a kernel that breaks this fails loudly
  const key = spec.key;
  let p = pipelines.get(key);
  if (p && p.nUniforms !== uniforms.length) throw new Error(`${key}: uniform fields changed (${p.nUniforms} -> ${uniforms.length}); the key must name the variant`);
  if (!p) {
    // the key as the first line, so a shader dump (Dawn's dump_shaders, bench/shader-audit.ts) names the kernel
    const code = `// kernel: ${key}\n${(spec.enables ?? []).map((e) => `enable ${e};\n`).join('')}${bindingsSource(spec, uniforms)}\n${spec.body()}`;
    const print = flags.printWgsl;
    if (print && spec.key.includes(print)) console.log(code);
    const module = be.device.createShaderModule({ code, label: spec.key });
    const pipeline = be.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: spec.key });
    p = { pipeline, layout: pipeline.getBindGroupLayout(0), nUniforms: uniforms.length };
    pipelines.set(key, p);
  }
  return p;
}

function uniformBuffer(be: WebGPUBackendLike, uniforms: UniformField[]): GPUBuffer {
  const key = uniforms.map(([, t, v]) => t[0] + v).join(',');
  let buf = uniformCache.get(key);
  if (buf) return buf;
  if (uniformCache.size >= UNIFORM_CACHE_MAX) {
    // Commands already encoded may still reference cached buffers: submit them first.
    flush(be);
    for (const b of uniformCache.values()) b.destroy();
    uniformCache.clear();
  }
  const bytes = Math.max(16, Math.ceil((uniforms.length * 4) / 16) * 16);
  buf = be.device.createBuffer({ size: bytes, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  const range = buf.getMappedRange();
  const i32 = new Int32Array(range), u32 = new Uint32Array(range), f32 = new Float32Array(range);
  uniforms.forEach(([, t, v], i) => { if (t === 'f32') f32[i] = v; else if (t === 'u32') u32[i] = v >>> 0; else i32[i] = v | 0; });
  buf.unmap();
  uniformCache.set(key, buf);
  return buf;
}

export function flush(be: WebGPUBackendLike = webgpuBackend()): void {
  if (be.commandEncoder) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
}

function batchSize(): number {
  return Number(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) || 15;
}

export interface OutputSpec { shape: number[]; dtype?: tf.DataType }

const isInfo = (o: OutputSpec | tf.TensorInfo): o is tf.TensorInfo => 'dataId' in o;

/** per kernel key: the tfjs dtypes whose bits each input binding may read (derived once, off the hot path) */
const inputDtypes = new Map<string, string[][]>();

/** tfjs casts int32 -> float32 on webgpu by relabelling, not converting: check what the buffer really holds */
function checkDtypes(spec: KernelSpec, inputs: tf.TensorInfo[], be: WebGPUBackendLike): void {
  let allowed = inputDtypes.get(spec.key);
  if (!allowed) {
    allowed = spec.inputs.map((d) => (d.type ?? 'f32').replace(/^vec\d<(.*)>$/, '$1') === 'f32' ? ['float32'] : ['int32', 'bool']);
    inputDtypes.set(spec.key, allowed);
  }
  inputs.forEach((t, i) => {
    const stored = be.tensorMap.get(t.dataId)?.dtype ?? t.dtype;
    if (!allowed![i].includes(stored)) throw new Error(`${spec.key}: binding ${spec.inputs[i].name} is ${spec.inputs[i].type ?? 'f32'} but its tensor's buffer holds ${stored}`);
  });
}

/**
 * Record one dispatch. Outputs are freshly allocated tensors (returned as
 * TensorInfos for a kernelFunc to hand back), or existing TensorInfos to
 * write into (several GEMMs filling column blocks of one gradient).
 */
export function dispatch(
  spec: KernelSpec,
  inputs: tf.TensorInfo[],
  outputs: Array<OutputSpec | tf.TensorInfo>,
  uniforms: UniformField[],
  grid: [number, number, number],
): tf.TensorInfo[] {
  const be = webgpuBackend();
  if (inputs.length !== spec.inputs.length || outputs.length !== spec.outputs.length) {
    throw new Error(`${spec.key}: expected ${spec.inputs.length} inputs/${spec.outputs.length} outputs, got ${inputs.length}/${outputs.length}`);
  }
  forDevice(be);
  checkDtypes(spec, inputs, be);
  if (spec.workgroupBytes !== undefined && spec.workgroupBytes > be.device.limits.maxComputeWorkgroupStorageSize) {
    throw new Error(`${spec.key}: needs ${spec.workgroupBytes} bytes of workgroup memory; this device allows ${be.device.limits.maxComputeWorkgroupStorageSize} (maxComputeWorkgroupStorageSize)`);
  }
  const outInfos = outputs.map((o) => isInfo(o) ? o : be.makeTensorInfo(o.shape, o.dtype ?? 'float32'));
  if (grid[0] * grid[1] * grid[2] === 0) return outInfos;
  for (const t of inputs) be.uploadToGPU(t.dataId);
  for (const t of outInfos) be.uploadToGPU(t.dataId);
  const { pipeline, layout } = pipelineFor(be, spec, uniforms);
  // a GPUBuffer as the resource itself (the whole buffer): Dawn's Node binding reads one object per entry
  // instead of a GPUBufferBinding's fields, 13 against 16 µs a createBindGroup on this project's CPU machine
  const entries: GPUBindGroupEntry[] = [];
  let b = 0;
  for (const t of outInfos) entries.push({ binding: b++, resource: be.tensorMap.get(t.dataId)!.resource as GPUBindingResource });
  for (const t of inputs) entries.push({ binding: b++, resource: be.tensorMap.get(t.dataId)!.resource as GPUBindingResource });
  if (uniforms.length) entries.push({ binding: b, resource: uniformBuffer(be, uniforms) as unknown as GPUBindingResource });
  let bindGroup: GPUBindGroup | undefined;
  let bgKey: string | undefined;
  if (flags.webgpuBindGroupCache) {
    bgKey = spec.key;
    for (const e of entries) bgKey += `,${bufferId(e.resource as object)}`;
    bindGroup = bindGroups.get(bgKey);
  }
  dispatchStats.dispatches++;
  if (!bindGroup) {
    dispatchStats.bindGroupsCreated++;
    bindGroup = be.device.createBindGroup({ layout, entries });
    if (bgKey !== undefined) {
      if (bindGroups.size >= BIND_GROUP_CACHE_MAX) bindGroups.clear();
      bindGroups.set(bgKey, bindGroup);
    }
  }
  for (const t of inputs) be.commandQueueOwnedIds.add(t.dataId);
  for (const t of outInfos) be.commandQueueOwnedIds.add(t.dataId);

  const timed = be.activeTimers != null;
  be.ensureCommandEncoderReady();
  if (timed && be.supportTimestampQuery) {
    // same scheme as tfjs's recordAndSubmit, so tf.profile reports our kernels' GPU time
    be.endComputePassEncoder();
    if (be.querySet == null) be.querySet = be.device.createQuerySet({ type: 'timestamp', count: be.querySetCount });
    be.computePassEncoder = be.commandEncoder!.beginComputePass({ timestampWrites: { querySet: be.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  } else if (!be.computePassEncoder) {
    be.computePassEncoder = be.commandEncoder!.beginComputePass({});
  }
  const pass = be.computePassEncoder!;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
  be.dispatchCountInPass++;
  if (timed) {
    be.endComputePassEncoder();
    be.activeTimers!.push({ name: spec.key, query: be.getQueryTime() });
  } else if (be.dispatchCountInPass >= batchSize()) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
  return outInfos;
}

/** Largest workgroup count per dimension we rely on (WebGPU's guaranteed minimum). */
export const MAX_GROUPS = 65535;

/** Split a 1-D workgroup count over x and y when it exceeds one dimension's limit. */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

export function bindGroupCount(): number { return bindGroups.size; }
