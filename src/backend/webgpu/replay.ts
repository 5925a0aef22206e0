/// <reference types="@webgpu/types" />
/**
 * Replaying a recorded training step (bench/NOTES.md entries 15–16).
 *
 * At notebook scale a step is ~10 ms of GPU work behind ~15 ms of host work:
 * tfjs's engine, tape and pool, and a bind group per dispatch, for ~200
 * dispatches that are the same every step. A step's forward, backward,
 * gradient statistics and the one read the trainer needs are a fixed
 * function of the batch and the adapter's parameters, so this records the
 * GPU commands of one such step as Dawn sees them (pipelines, bind groups,
 * workgroup counts, copies, uploaded constants, the read) and replays them:
 * the batch and the current parameters are copied into buffers the replay
 * owns, the recorded commands are encoded into one command buffer with the
 * recorded bind groups, and the read comes back. No tfjs op runs.
 *
 * What makes that safe:
 *   - a replay is built only from two consecutive recordings that are the
 *     same step up to renaming the buffers the step allocates (entry 16
 *     measured that tfjs renames them the same way every step), with the same
 *     pipelines, workgroup counts, uniform buffers and uploaded bytes; a
 *     dropout mask, a host-side decision or a second read breaks that;
 *   - every buffer the step allocated stays the replay's (pinned: kept out of
 *     tfjs's free lists, so nothing else is handed one), and no buffer it
 *     reads (frozen weights, cached uniforms) is destroyed while it lives;
 *     a buffer it reads that its tensor gives back to the pool ends it;
 *   - the caller (src/train/step-replay.ts) runs the first replay beside the
 *     normal step and keeps it only if both read the same values.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { elementCount, flush, webgpuBackend, type WebGPUBackendLike } from './dispatch.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Entry { binding: number; buffer: GPUBuffer; offset?: number; size?: number }
interface Dispatch { k: 'dispatch'; pipeline: GPUComputePipeline; group: GPUBindGroup; layout: GPUBindGroupLayout; entries: Entry[]; wg: [number, number, number] }
interface Copy { k: 'copy'; src: GPUBuffer; so: number; dst: GPUBuffer; dso: number; size: number }
interface Upload { k: 'upload'; bytes: Uint8Array; dst: GPUBuffer; dso: number; size: number }
interface Clear { k: 'clear'; dst: GPUBuffer; offset: number; size: number }
type Cmd = Dispatch | Copy | Upload | Clear;

/** What one recorded step did: its commands, the read at its end, and why it cannot be replayed (if it cannot). */
export interface Recording {
  cmds: Cmd[];
  read?: { src: GPUBuffer; so: number; size: number };
  problems: string[];
  /** the step's commands as text, buffers renamed by role: equal for two steps exactly when they are the same step */
  canon: string;
  /** buffers the tfjs pool had handed out when the step began (the tensors alive before it) */
  before: Set<GPUBuffer>;
  dynamic: Map<GPUBuffer, string>;
  device: GPUDevice;
}

// ---- instrumentation: installed once per process on Dawn's prototypes

const groupInfo = new WeakMap<object, { layout: GPUBindGroupLayout; entries: Entry[] }>();
const mappedRanges = new WeakMap<object, ArrayBuffer[]>();
const snapshots = new WeakMap<object, Uint8Array>();
const passState = new WeakMap<object, { pipeline?: GPUComputePipeline; group?: GPUBindGroup }>();
let active: { cmds: Cmd[]; problems: string[]; read?: Recording['read']; lastCopy?: Copy } | undefined;
/** buffers a live replay needs: their destroy() waits until no replay needs them */
const guarded = new Map<GPUBuffer, number>();
const deferredDestroy = new Set<GPUBuffer>();
let installedOn: object | undefined;

function wrap(proto: Any, name: string, make: (orig: (...a: Any[]) => Any) => (this: Any, ...a: Any[]) => Any): void {
  const orig = proto[name];
  if (typeof orig !== 'function') throw new Error(`step replay: Dawn's ${name} is not a function`);
  proto[name] = make(orig);
}

/** Wrap Dawn's prototypes (once): bind groups remember their entries; while a recording runs, commands are kept. */
export function installReplayHooks(be: WebGPUBackendLike): void {
  const devProto = Object.getPrototypeOf(be.device);
  if (installedOn === devProto) return;
  installedOn = devProto;
  wrap(devProto, 'createBindGroup', (orig) => function (this: Any, d: Any) {
    const g = orig.call(this, d);
    // ours bind the GPUBuffer itself, tfjs's a { buffer, offset, size }
    const entries: Entry[] = [...d.entries].map((e: Any) => e.resource?.buffer
      ? { binding: e.binding, buffer: e.resource.buffer, offset: e.resource.offset, size: e.resource.size }
      : { binding: e.binding, buffer: e.resource });
    groupInfo.set(g, { layout: d.layout, entries });
    return g;
  });
  const probe = be.device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  const bufProto = Object.getPrototypeOf(probe);
  wrap(bufProto, 'getMappedRange', (orig) => function (this: Any, ...a: Any[]) {
    const r = orig.apply(this, a);
    // uploads only: a read back's staging buffer (MAP_READ) is mapped too
    if (active && !(this.usage & GPUBufferUsage.MAP_READ)) { let l = mappedRanges.get(this); if (!l) mappedRanges.set(this, l = []); l.push(r); }
    return r;
  });
  // an upload's bytes are what its staging buffer holds when it is unmapped
  wrap(bufProto, 'unmap', (orig) => function (this: Any) {
    const l = mappedRanges.get(this);
    if (l) {
      mappedRanges.delete(this);
      if (l.length === 1) snapshots.set(this, new Uint8Array(l[0].slice(0)));
      else if (active) active.problems.push('an upload mapped in several ranges');
    }
    return orig.call(this);
  });
  wrap(bufProto, 'mapAsync', (orig) => function (this: Any, ...a: Any[]) {
    if (active) {
      const c = active.lastCopy;
      if (active.read) active.problems.push('more than one read back in a step');
      else if (!c || c.dst !== this) active.problems.push('a read back of a buffer no copy filled');
      else { active.read = { src: c.src, so: c.so, size: c.size }; active.cmds.splice(active.cmds.lastIndexOf(c), 1); }
    }
    return orig.apply(this, a);
  });
  wrap(bufProto, 'destroy', (orig) => function (this: Any) {
    if (guarded.has(this)) { deferredDestroy.add(this); return undefined; }
    return orig.call(this);
  });
  probe.unmap();
  probe.destroy();
  wrap(Object.getPrototypeOf(be.queue), 'writeBuffer', (orig) => function (this: Any, ...a: Any[]) {
    // a queue write lands before the commands encoded ahead of it: a recording cannot place it
    if (active) active.problems.push('a queue.writeBuffer inside the step (tfjs without the host caches?)');
    return orig.apply(this, a);
  });
  const enc = be.device.createCommandEncoder();
  const encProto = Object.getPrototypeOf(enc);
  wrap(encProto, 'copyBufferToBuffer', (orig) => function (this: Any, src: Any, so: number, dst: Any, dso: number, size: number) {
    if (active) {
      const bytes = snapshots.get(src);
      if (bytes) active.cmds.push({ k: 'upload', bytes: bytes.slice(so, so + size), dst, dso, size });
      else { const c: Copy = { k: 'copy', src, so, dst, dso, size }; active.cmds.push(c); active.lastCopy = c; }
    }
    return orig.call(this, src, so, dst, dso, size);
  });
  wrap(encProto, 'clearBuffer', (orig) => function (this: Any, dst: Any, offset = 0, size?: number) {
    active?.cmds.push({ k: 'clear', dst, offset, size: size ?? dst.size - offset });
    return orig.call(this, dst, offset, size);
  });
  wrap(encProto, 'beginComputePass', (orig) => function (this: Any, d: Any) {
    if (active && d?.timestampWrites) active.problems.push('timestamp queries (profiling) inside the step');
    return orig.call(this, d);
  });
  const pass = enc.beginComputePass({});
  const passProto = Object.getPrototypeOf(pass);
  pass.end();
  enc.finish();
  wrap(passProto, 'setPipeline', (orig) => function (this: Any, p: Any) {
    if (active) { const s = passState.get(this) ?? {}; s.pipeline = p; passState.set(this, s); }
    return orig.call(this, p);
  });
  wrap(passProto, 'setBindGroup', (orig) => function (this: Any, i: number, g: Any, ...rest: Any[]) {
    if (active) {
      if (i !== 0 || rest.length && rest[0]?.length) active.problems.push('a bind group other than group 0, or dynamic offsets');
      const s = passState.get(this) ?? {}; s.group = g; passState.set(this, s);
    }
    return orig.call(this, i, g, ...rest);
  });
  wrap(passProto, 'dispatchWorkgroups', (orig) => function (this: Any, x: number, y = 1, z = 1) {
    if (active) {
      const s = passState.get(this);
      const info = s?.group && groupInfo.get(s.group);
      if (!s?.pipeline || !s.group || !info) active.problems.push('a dispatch whose pipeline or bind group was set before the recording');
      else active.cmds.push({ k: 'dispatch', pipeline: s.pipeline, group: s.group, layout: info.layout, entries: info.entries, wg: [x, y, z] });
    }
    return orig.call(this, x, y, z);
  });
  wrap(passProto, 'dispatchWorkgroupsIndirect', (orig) => function (this: Any, ...a: Any[]) {
    active?.problems.push('an indirect dispatch');
    return orig.apply(this, a);
  });
}

// ---- recording

interface PoolInternals { usedBuffers: Map<string, GPUBuffer[]>; freeBuffers: Map<string, GPUBuffer[]>; numFreeBuffers: number; numBytesUsed: number; numBytesAllocated: number }
const poolOf = (be: WebGPUBackendLike) => be.bufferManager as unknown as PoolInternals;

const bufferOf = (be: WebGPUBackendLike, t: tf.TensorInfo): GPUBuffer => {
  be.uploadToGPU(t.dataId);
  const r = be.tensorMap.get(t.dataId)?.resource as GPUBuffer | undefined;
  if (!r || typeof (r as Any).size !== 'number') throw new Error('step replay: a tensor without a GPU buffer');
  return r;
};

/**
 * Start recording a step. `dynamic` names the tensors that change from step
 * to step (the batch, the trainable parameters); they are put on the GPU first.
 */
export function beginRecording(dynamic: Map<string, tf.TensorInfo>): () => Recording {
  const be = webgpuBackend();
  installReplayHooks(be);
  if (active) throw new Error('step replay: a recording is already running');
  const dyn = new Map<GPUBuffer, string>();
  for (const [name, t] of dynamic) dyn.set(bufferOf(be, t), name);
  // commands encoded before the step (the last update) go first, outside the recording
  flush(be);
  const before = new Set<GPUBuffer>();
  for (const list of poolOf(be).usedBuffers.values()) for (const b of list) before.add(b);
  const rec = { cmds: [] as Cmd[], problems: [] as string[], read: undefined as Recording['read'], lastCopy: undefined as Copy | undefined };
  active = rec;
  return () => {
    active = undefined;
    if (!rec.read) rec.problems.push('no read back at the end of the step');
    const r: Recording = { cmds: rec.cmds, read: rec.read, problems: rec.problems, canon: '', before, dynamic: dyn, device: be.device };
    r.canon = canonical(r);
    return r;
  };
}

/** Abandon a recording (the step threw). */
export function abortRecording(): void { active = undefined; }

const objIds = new WeakMap<object, number>();
let nextObj = 0;
const objId = (o: object): number => { let i = objIds.get(o); if (i === undefined) objIds.set(o, i = nextObj++); return i; };

/** how a buffer is named in the canonical text: its role, its identity (kept across steps) or its first use */
function namer(r: Recording): (b: GPUBuffer) => string {
  const fresh = new Map<GPUBuffer, string>();
  return (b) => {
    const d = r.dynamic.get(b);
    if (d !== undefined) return `D(${d})`;
    if (r.before.has(b) || (b.usage & GPUBufferUsage.UNIFORM)) return `P${objId(b)}`;
    let n = fresh.get(b);
    if (n === undefined) fresh.set(b, n = `T${fresh.size}:${b.size}:${b.usage}`);
    return n;
  };
}

function canonical(r: Recording): string {
  const name = namer(r);
  const out: string[] = [];
  for (const c of r.cmds) {
    if (c.k === 'dispatch') out.push(`d ${objId(c.pipeline)} ${c.wg.join('x')} ${c.entries.map((e) => `${e.binding}=${name(e.buffer)}@${e.offset ?? 0}+${e.size ?? '*'}`).join(' ')}`);
    else if (c.k === 'copy') out.push(`c ${name(c.src)}@${c.so} ${name(c.dst)}@${c.dso} ${c.size}`);
    else if (c.k === 'clear') out.push(`z ${name(c.dst)}@${c.offset} ${c.size}`);
    else out.push(`u ${name(c.dst)}@${c.dso} ${c.size} ${Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength).toString('base64')}`);
  }
  if (r.read) out.push(`r ${name(r.read.src)}@${r.read.so} ${r.read.size}`);
  return out.join('\n');
}

// ---- the replay

/** replays alive in this process, so the pool's release hook can find the buffers they hold */
const live = new Set<StepReplay>();

/**
 * Called by the pool (pool.ts) for every buffer tfjs releases: a pinned
 * buffer goes back to its replay instead of the free list (true: handled);
 * a buffer a replay reads but does not own ends that replay.
 */
export function replayRelease(bm: { releaseBuffer(b: GPUBuffer, reuse?: boolean): void }, release: (b: GPUBuffer, reuse: boolean) => void, buffer: GPUBuffer): boolean {
  if (!live.size) return false;
  for (const r of live) {
    if (r.pinned.has(buffer)) {
      release(buffer, true);
      takeFromFreeList(bm as unknown as PoolInternals, buffer);
      r.pinnedFree.add(buffer);
      return true;
    }
    if (r.reads.has(buffer)) r.end(`a buffer it reads was released by its tensor`);
  }
  return false;
}

function takeFromFreeList(pool: PoolInternals, b: GPUBuffer): boolean {
  const list = pool.freeBuffers.get(`${b.size}_${b.usage}`);
  const i = list ? list.lastIndexOf(b) : -1;
  if (i < 0) return false;
  list!.splice(i, 1);
  pool.numFreeBuffers--;
  // counted as in use while the replay holds it, so the pool cap does not count it as free
  pool.numBytesUsed += b.size;
  return true;
}

export interface ReplayResult { values: Float32Array; outputs: Map<string, tf.Tensor> }

/**
 * A replay submitted but not yet read (a pipelined step): the outputs as
 * tensors, the values the step reads back as a tensor over the replay's own
 * buffer (valid until the next replay is submitted: hand it to GPU work
 * before then; absent where they do not start that buffer, `pipelinable`),
 * and the read, started at once.
 */
export interface SubmittedReplay { outputs: Map<string, tf.Tensor>; values?: tf.Tensor; read: Promise<Float32Array> }

export class StepReplay {
  /** buffers the step allocates: the replay's own until it ends */
  readonly pinned = new Set<GPUBuffer>();
  /** of those, the ones no tensor holds (taken out of the free list) */
  readonly pinnedFree = new Set<GPUBuffer>();
  /** buffers it reads that tensors own (frozen weights): one released to the pool ends the replay */
  readonly reads = new Set<GPUBuffer>();
  /** why it ended, once it has */
  ended?: string;
  replays = 0;
  private readonly own: GPUBuffer[] = [];
  private readonly guardedHere = new Set<GPUBuffer>();
  private readonly inputs = new Map<string, { buffer: GPUBuffer; bytes: number }>();
  private readonly encodeList: Cmd[] = [];
  /** two, used in turn: a pipelined step's read may still be pending when the next step is submitted */
  private readonly readBuffers: GPUBuffer[] = [];
  private nextRead = 0;
  private readonly reading = [false, false];
  /** the next step's commands, encoded while this one ran (SHARELORA_WEBGPU_REPLAY_PREPARE); dropped if the replay ends */
  private prepared?: { cb: GPUCommandBuffer; slot: number };

  /** the values a step reads back start its buffer (what a pipelined step hands to stepControl) */
  get pipelinable(): boolean { return !this.ended && this.rec.read!.so === 0 && this.rec.read!.size % 4 === 0; }
  private readonly be: WebGPUBackendLike;

  /** the step's outputs the caller keeps (the gradients): buffer, shape, dtype */
  private readonly outputs = new Map<string, { buffer: GPUBuffer; shape: number[]; dtype: tf.DataType }>();

  /**
   * Build from the second of two recordings whose canonical texts are equal.
   * `outputs` names tensors the step leaves for the caller (the gradients),
   * handed out after each replay as tensors over the replay's buffers.
   */
  constructor(private readonly rec: Recording, outputs: Map<string, tf.TensorInfo>) {
    this.be = webgpuBackend();
    for (const [name, t] of outputs) this.outputs.set(name, { buffer: bufferOf(this.be, t), shape: t.shape, dtype: t.dtype });
    const be = this.be, dev = be.device, pool = poolOf(be);
    if (rec.device !== dev) throw new Error('step replay: the recording was made on another device');
    const subst = new Map<GPUBuffer, GPUBuffer>();
    for (const [buf, name] of rec.dynamic) {
      const own = dev.createBuffer({ size: buf.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: `replay input ${name}` });
      this.own.push(own);
      subst.set(buf, own);
      this.inputs.set(name, { buffer: own, bytes: buf.size });
    }
    const sub = (b: GPUBuffer) => subst.get(b) ?? b;
    const touch = (b: GPUBuffer) => {
      if (subst.has(b) || rec.dynamic.has(b)) return;
      if (rec.before.has(b) || (b.usage & GPUBufferUsage.UNIFORM)) { if (!(b.usage & GPUBufferUsage.UNIFORM)) this.reads.add(b); this.guard(b); return; }
      if (!this.pinned.has(b)) { this.pinned.add(b); this.guard(b); if (takeFromFreeList(pool, b)) this.pinnedFree.add(b); }
    };
    for (const c of rec.cmds) {
      if (c.k === 'dispatch') {
        c.entries.forEach((e) => touch(e.buffer));
        const swapped = c.entries.some((e) => subst.has(e.buffer));
        const group = swapped
          ? dev.createBindGroup({ layout: c.layout, entries: c.entries.map((e) => ({ binding: e.binding, resource: e.offset === undefined ? sub(e.buffer) as unknown as GPUBindingResource : { buffer: sub(e.buffer), offset: e.offset, size: e.size } })) })
          : c.group;
        this.encodeList.push({ ...c, group });
      } else if (c.k === 'copy') {
        touch(c.src); touch(c.dst);
        this.encodeList.push({ ...c, src: sub(c.src), dst: sub(c.dst) });
      } else if (c.k === 'clear') {
        touch(c.dst);
        this.encodeList.push({ ...c, dst: sub(c.dst) });
      } else {
        touch(c.dst);
        // a constant the step uploads (a scalar, the dloss 1.0): kept in a buffer of its own, copied in its place
        const src = dev.createBuffer({ size: Math.max(4, Math.ceil(c.size / 4) * 4), usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true, label: 'replay constant' });
        new Uint8Array(src.getMappedRange()).set(c.bytes);
        src.unmap();
        this.own.push(src);
        this.encodeList.push({ k: 'copy', src, so: 0, dst: sub(c.dst), dso: c.dso, size: c.size });
      }
    }
    const read = rec.read!;
    touch(read.src);
    for (const o of this.outputs.values()) if (!this.pinned.has(o.buffer)) throw new Error('step replay: an output the step did not write');
    for (let i = 0; i < 2; i++) {
      const rb = dev.createBuffer({ size: Math.ceil(read.size / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `replay read ${i}` });
      this.readBuffers.push(rb);
      this.own.push(rb);
    }
    live.add(this);
  }

  private guard(b: GPUBuffer): void {
    if (this.guardedHere.has(b)) return;
    this.guardedHere.add(b);
    guarded.set(b, (guarded.get(b) ?? 0) + 1);
  }

  /**
   * The step's recorded commands and the copy of what it reads back into read buffer `slot`, appended to `enc`, as a
   * command buffer. `submitChunk` (SHARELORA_WEBGPU_REPLAY_CHUNK): each full chunk of
   * `chunk`, 2·chunk, 4·chunk, … dispatches handed over as it is encoded, so the GPU, idle since the last step's
   * end, starts on the first few while the host encodes the rest; the returned buffer is the remainder.
   */
  private encodeBody(slot: number, enc = this.be.device.createCommandEncoder(), submitChunk?: (cb: GPUCommandBuffer) => void): GPUCommandBuffer {
    const dev = this.be.device;
    let pass: GPUComputePassEncoder | undefined;
    let pipeline: GPUComputePipeline | undefined;
    let chunk = submitChunk ? flags.webgpuReplayChunk : 0, left = chunk || Infinity;
    for (const c of this.encodeList) {
      if (c.k === 'dispatch') {
        if (left === 0) {
          pass?.end();
          pass = undefined;
          submitChunk!(enc.finish());
          enc = dev.createCommandEncoder();
          chunk *= 2;
          left = chunk;
        }
        left--;
        if (!pass) { pass = enc.beginComputePass(); pipeline = undefined; }
        if (c.pipeline !== pipeline) { pass.setPipeline(c.pipeline); pipeline = c.pipeline; }
        pass.setBindGroup(0, c.group);
        pass.dispatchWorkgroups(c.wg[0], c.wg[1], c.wg[2]);
        continue;
      }
      if (pass) { pass.end(); pass = undefined; }
      if (c.k === 'copy') enc.copyBufferToBuffer(c.src, c.so, c.dst, c.dso, c.size);
      else if (c.k === 'clear') enc.clearBuffer(c.dst, c.offset, c.size);
    }
    if (pass) pass.end();
    const read = this.rec.read!;
    enc.copyBufferToBuffer(read.src, read.so, this.readBuffers[slot], 0, read.size);
    return enc.finish();
  }

  /** inputs by name (what the recording's `dynamic` named) -> the tensors of this step */
  async run(dynamic: Map<string, tf.TensorInfo>): Promise<ReplayResult> {
    const r = this.submit(dynamic);
    r.values?.dispose();
    return { values: await r.read, outputs: r.outputs };
  }

  /**
   * run() without waiting for the read: the step's commands are submitted and
   * the read started. At most one read may be pending when the next is
   * submitted (two read buffers, used in turn): await it first.
   */
  submit(dynamic: Map<string, tf.TensorInfo>): SubmittedReplay {
    if (this.ended) throw new Error(`step replay ended: ${this.ended}`);
    const be = this.be;
    if (be.device !== this.rec.device) { this.end('the device changed'); throw new Error('step replay ended: the device changed'); }
    const sources: Array<[GPUBuffer, GPUBuffer, number]> = [];
    for (const [name, own] of this.inputs) {
      const t = dynamic.get(name);
      if (!t) throw new Error(`step replay: input ${name} missing`);
      const bytes = elementCount(t) * 4;
      if (bytes > own.bytes) throw new Error(`step replay: input ${name} has ${bytes} bytes, the recording ${own.bytes}`);
      sources.push([bufferOf(be, t), own.buffer, bytes]);
    }
    if (this.reading[this.nextRead]) throw new Error('step replay: a read of two steps ago is still pending (await each submitted read before the next submit)');
    // uploads of the inputs and the last update's commands, submitted ahead of the replay
    flush(be);
    const slot = this.nextRead;
    const rb = this.readBuffers[slot];
    const read = this.rec.read!;
    this.reading[slot] = true;
    this.nextRead = 1 - this.nextRead;
    const enc = be.device.createCommandEncoder();
    for (const [src, dst, bytes] of sources) enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
    const prepared = this.prepared;
    this.prepared = undefined;
    if (prepared && prepared.slot === slot) {
      be.queue.submit([enc.finish(), prepared.cb]);
      preparedCount++;
    } else {
      // the inputs' copies start the first buffer: a chunk's (SHARELORA_WEBGPU_REPLAY_CHUNK) or the whole step's
      be.queue.submit([this.encodeBody(slot, enc, flags.webgpuReplayChunk > 0 ? (cb) => be.queue.submit([cb]) : undefined)]);
    }
    const readP = rb.mapAsync(GPUMapMode.READ).then(() => {
      const v = new Float32Array(rb.getMappedRange().slice(0, read.size));
      rb.unmap();
      return v;
    }).finally(() => { this.reading[slot] = false; });
    // the next step's commands, encoded now while the GPU runs this one: the same every step but for the inputs'
    // copies (the next submit's first buffer) and the read buffer (two, in turn: the next is known), so at the next
    // submit the GPU waits only for the update's commands, not for ~700 dispatches' encoding
    // (SHARELORA_WEBGPU_REPLAY_PREPARE; bench/NOTES.md entry 45)
    if (flags.webgpuReplayPrepare && !flags.webgpuReplayChunk) this.prepared = { cb: this.encodeBody(this.nextRead), slot: this.nextRead };
    this.replays++;
    const outputs = new Map<string, tf.Tensor>();
    // tensors over the replay's buffers: disposing one leaves the buffer to the replay (tfjs's zeroCopy)
    for (const [name, o] of this.outputs) outputs.set(name, tf.tensor({ buffer: o.buffer, zeroCopy: true } as unknown as number[], o.shape, o.dtype));
    const values = this.pipelinable ? tf.tensor({ buffer: read.src, zeroCopy: true } as unknown as number[], [read.size / 4], 'float32') : undefined;
    return { outputs, values, read: readP };
  }

  /**
   * Give everything back. The pinned buffers no tensor holds are destroyed, not
   * returned to the free lists: the steps that ran beside the replay (warm-up,
   * verification, evaluation) left a working set of their own there, and the
   * pool cap spares recently asked sizes, so returning both doubled what a
   * process kept (6.9 GB against 2.4 in session 8's notebook runs).
   */
  end(why = 'ended'): void {
    if (this.ended) return;
    this.ended = why;
    this.prepared = undefined;
    live.delete(this);
    const pool = poolOf(this.be);
    // the last update read the gradients from pinned buffers: its commands must be submitted before they go
    if (this.be.device === this.rec.device) flush(this.be);
    for (const b of this.guardedHere) this.unguard(b);
    this.guardedHere.clear();
    for (const b of this.pinnedFree) {
      pool.numBytesUsed -= b.size;
      pool.numBytesAllocated -= b.size;
      b.destroy();
    }
    this.pinned.clear();
    this.pinnedFree.clear();
    this.reads.clear();
    for (const b of this.own) b.destroy();
  }

  private unguard(b: GPUBuffer): void {
    const n = (guarded.get(b) ?? 0) - 1;
    if (n > 0) { guarded.set(b, n); return; }
    guarded.delete(b);
    if (deferredDestroy.delete(b)) b.destroy();
  }
}

let preparedCount = 0;
/** replayed steps submitted from commands encoded ahead (SHARELORA_WEBGPU_REPLAY_PREPARE), since the process started */
export function preparedSubmits(): number { return preparedCount; }

/** replays alive (tests check that fit() leaves none) */
export function liveReplays(): number { return live.size; }
