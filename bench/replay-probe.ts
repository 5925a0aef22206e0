/**
 * Feasibility probe for bench/NOTES.md entry 15 (replaying a recorded step):
 * is the GPU work of consecutive training steps periodic? Records every GPU
 * command a steady-state step issues (dispatches with their pipeline, bound
 * buffers, workgroups and uniform bytes; copies; queue writes; mapped uploads;
 * buffer creations) by wrapping Dawn's objects from outside the library, then
 * compares step k with k+1 and k+2. Measurement only: nothing in src/ changes.
 *   node dist/bench/replay-probe.js [lavapipe|null] [fixture.json]
 * Writes bench/results/replay-probe-<date>-<device>.json and prints a summary.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { injectShareLoRA, randomModel, Trainer, useBackend } from '../src/index.js';
import type { WorkerSpec } from './worker.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Dispatch {
  k: 'dispatch';
  pipe: number;
  label: string;
  op: string;
  wg: number[];
  /** buffer ids in binding order (storage and uniform) */
  bufs: number[];
  /** per binding: the bytes last written to it if it is a uniform buffer, else '' */
  uni: string[];
  /** bindings the shader declares read_write */
  writes: number[];
}
interface Copy { k: 'copy'; src: number; dst: number; size: number; op: string }
interface Write { k: 'write'; dst: number; bytes: string; uniform: boolean; op: string }
interface Upload { k: 'upload'; dst: number; bytes: string; op: string }
/** a mapAsync read back (the loss and statistics the trainer reads once a step) */
interface Read { k: 'read'; src: number; op: string }
type Cmd = Dispatch | Copy | Write | Upload | Read;
interface Created { id: number; size: number; usage: number; mapped: boolean; op: string }

const UNIFORM = 0x40; // GPUBufferUsage.UNIFORM, before the globals exist

const args = process.argv.slice(2);
const mode = args[0] === 'null' ? 'null' : 'lavapipe';
const fixture = args[1] ?? 'bench/fixtures/notebook-null-device.json';
const spec = JSON.parse(readFileSync(fixture, 'utf8')) as WorkerSpec;
const FIRST = 5, LAST = 10;

// stable ids: a WebGPU object is the same replayable resource exactly when it is the same JS object
const ids = new WeakMap<object, number>();
let nextId = 0;
const idOf = (o: object): number => { let i = ids.get(o); if (i === undefined) ids.set(o, i = nextId++); return i; };
const bufInfo = new WeakMap<object, { size: number; usage: number }>();
const bufBytes = new WeakMap<object, string>();
const mapped = new WeakMap<object, ArrayBuffer[]>();
const pipeLabel = new WeakMap<object, string>();
/** per pipeline: the bindings its WGSL declares read_write (what a dispatch writes), to tell a step's inputs from its results */
const pipeWrites = new WeakMap<object, Set<number>>();
const moduleWrites = new WeakMap<object, Set<number>>();
const reading = new WeakSet<object>();
const groupBufs = new WeakMap<object, object[]>();
const passGroup = new WeakMap<object, object>();
const passPipe = new WeakMap<object, object>();

const hex = (u8: Uint8Array): string => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
const bytesOf = (data: ArrayBuffer | ArrayBufferView, dataOffset = 0, size?: number): Uint8Array => {
  // writeBuffer's offset and size count elements for a typed array, bytes for an ArrayBuffer
  if (ArrayBuffer.isView(data)) {
    const el = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    const n = size === undefined ? data.byteLength - dataOffset * el : size * el;
    return new Uint8Array(data.buffer, data.byteOffset + dataOffset * el, n);
  }
  return new Uint8Array(data, dataOffset, size ?? data.byteLength - dataOffset);
};

let recording: Cmd[] | undefined;
let created: Created[] | undefined;
const kernelStack: string[] = [];
const opName = () => kernelStack[kernelStack.length - 1] ?? '(outside an op)';

function wrap(proto: Any, name: string, make: (orig: (...a: Any[]) => Any) => (this: Any, ...a: Any[]) => Any): void {
  const orig = proto[name];
  if (typeof orig !== 'function') throw new Error(`cannot wrap ${name}`);
  proto[name] = make(orig);
}

/** Patched on the prototypes of the live objects, so tfjs's programs and ours are seen alike. */
function instrument(be: Any): void {
  const device = be.device, queue = be.queue;
  const devProto = Object.getPrototypeOf(device);
  wrap(devProto, 'createBuffer', (orig) => function (this: Any, d: Any) {
    const b = orig.call(this, d);
    const id = idOf(b);
    bufInfo.set(b, { size: d.size, usage: d.usage });
    created?.push({ id, size: d.size, usage: d.usage, mapped: !!d.mappedAtCreation, op: opName() });
    return b;
  });
  wrap(devProto, 'createShaderModule', (orig) => function (this: Any, d: Any) {
    const m = orig.call(this, d);
    const w = new Set<number>();
    for (const x of String(d.code).matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)) w.add(+x[1]);
    moduleWrites.set(m, w);
    return m;
  });
  wrap(devProto, 'createComputePipeline', (orig) => function (this: Any, d: Any) {
    const p = orig.call(this, d);
    pipeLabel.set(p, d.label ?? '?');
    pipeWrites.set(p, moduleWrites.get(d.compute?.module) ?? new Set());
    return p;
  });
  wrap(devProto, 'createBindGroup', (orig) => function (this: Any, d: Any) {
    const g = orig.call(this, d);
    // tfjs binds {buffer, offset, size}; ours binds the GPUBuffer itself
    groupBufs.set(g, [...d.entries].sort((a: Any, b: Any) => a.binding - b.binding).map((e: Any) => e.resource?.buffer ?? e.resource));
    return g;
  });
  wrap(Object.getPrototypeOf(queue), 'writeBuffer', (orig) => function (this: Any, buf: Any, off: number, data: Any, dataOff?: number, size?: number) {
    const bytes = hex(bytesOf(data, dataOff ?? 0, size));
    if (off === 0) bufBytes.set(buf, bytes);
    const info = bufInfo.get(buf);
    recording?.push({ k: 'write', dst: idOf(buf), bytes, uniform: !!info && (info.usage & UNIFORM) !== 0, op: opName() });
    return orig.call(this, buf, off, data, dataOff, size);
  });
  // mapped-at-creation buffers: our uniforms, tfjs's staging uploads; their bytes are what the unmap hands over
  const probe = device.createBuffer({ size: 16, usage: UNIFORM, mappedAtCreation: true });
  const bufProto = Object.getPrototypeOf(probe);
  wrap(bufProto, 'getMappedRange', (orig) => function (this: Any, ...a: Any[]) {
    const r = orig.apply(this, a);
    let l = mapped.get(this); if (!l) mapped.set(this, l = []);
    l.push(r);
    return r;
  });
  wrap(bufProto, 'mapAsync', (orig) => function (this: Any, ...a: Any[]) { reading.add(this); return orig.apply(this, a); });
  wrap(bufProto, 'unmap', (orig) => function (this: Any) {
    const l = mapped.get(this);
    if (reading.has(this)) {
      reading.delete(this); mapped.delete(this);
      recording?.push({ k: 'read', src: idOf(this), op: opName() });
    } else if (l) {
      const bytes = l.map((r) => hex(new Uint8Array(r))).join('');
      bufBytes.set(this, bytes);
      mapped.delete(this);
      recording?.push({ k: 'upload', dst: idOf(this), bytes, op: opName() });
    }
    return orig.call(this);
  });
  probe.unmap(); probe.destroy();
  const enc = device.createCommandEncoder();
  wrap(Object.getPrototypeOf(enc), 'copyBufferToBuffer', (orig) => function (this: Any, src: Any, so: number, dst: Any, dso: number, size: number) {
    recording?.push({ k: 'copy', src: idOf(src), dst: idOf(dst), size, op: opName() });
    return orig.call(this, src, so, dst, dso, size);
  });
  const pass = enc.beginComputePass({});
  const passProto = Object.getPrototypeOf(pass);
  pass.end(); enc.finish();
  wrap(passProto, 'setPipeline', (orig) => function (this: Any, p: Any) { passPipe.set(this, p); return orig.call(this, p); });
  wrap(passProto, 'setBindGroup', (orig) => function (this: Any, i: number, g: Any, ...rest: Any[]) { if (i === 0) passGroup.set(this, g); return orig.call(this, i, g, ...rest); });
  wrap(passProto, 'dispatchWorkgroups', (orig) => function (this: Any, x: number, y = 1, z = 1) {
    if (recording) {
      const p = passPipe.get(this)!, g = passGroup.get(this)!;
      const bufs = groupBufs.get(g) ?? [];
      recording.push({
        k: 'dispatch', pipe: idOf(p), label: pipeLabel.get(p) ?? '?', op: opName(), wg: [x, y, z],
        bufs: bufs.map(idOf), writes: [...(pipeWrites.get(p) ?? [])],
        uni: bufs.map((b) => { const i = bufInfo.get(b); return i && (i.usage & UNIFORM) ? bufBytes.get(b) ?? '?' : ''; }),
      });
    }
    return orig.call(this, x, y, z);
  });
}

/** f32 words of two uniform byte strings where they differ, to name what changed (lr, bias corrections, ...) */
function wordDiff(a: string, b: string): Array<[number, number, number]> {
  const fa = new Float32Array(new Uint8Array(Buffer.from(a, 'hex')).buffer), fb = new Float32Array(new Uint8Array(Buffer.from(b, 'hex')).buffer);
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i < Math.max(fa.length, fb.length); i++) if (!Object.is(fa[i], fb[i])) out.push([i, fa[i], fb[i]]);
  return out;
}

interface PairReport {
  a: number; b: number;
  sameLength: boolean; lengths: [number, number];
  dispatches: [number, number];
  /** every command alike: kind, pipeline, workgroups, buffer ids, bytes */
  identical: boolean;
  /** same kinds, pipelines and workgroup counts at every position */
  sameShape: boolean;
  /** positions that differ, by what */
  differ: { positions: number; pipeline: number; workgroups: number; storageBuffers: number; uniformBufferIds: number; uniformBytes: number; copyBuffers: number; writtenBytes: number; other: number };
  /** the same with buffer ids renamed consistently (a bijection step a -> step b) and uniform bytes ignored */
  isomorphic: boolean;
  isomorphicBreak?: string;
  byKernel: Record<string, { positions: number; storageBuffers: number; uniformBytes: number; uniformBufferIds: number; other: number }>;
  uniformChanges: Array<{ label: string; op: string; words: Array<[number, number, number]> }>;
}

function compare(A: Cmd[], B: Cmd[], a: number, b: number, fwdOut?: Map<number, number>): PairReport {
  const d = { positions: 0, pipeline: 0, workgroups: 0, storageBuffers: 0, uniformBufferIds: 0, uniformBytes: 0, copyBuffers: 0, writtenBytes: 0, other: 0 };
  const byKernel: PairReport['byKernel'] = {};
  const uniformChanges: PairReport['uniformChanges'] = [];
  const seenChange = new Set<string>();
  let sameShape = A.length === B.length;
  const fwd = new Map<number, number>(), back = new Map<number, number>();
  let iso = A.length === B.length;
  let isoBreak: string | undefined = iso ? undefined : `lengths ${A.length} vs ${B.length}`;
  const map = (x: number, y: number, at: number) => {
    if (!iso) return;
    const f = fwd.get(x), r = back.get(y);
    if ((f !== undefined && f !== y) || (r !== undefined && r !== x)) { iso = false; isoBreak = `position ${at}: buffer ${x} -> ${y} conflicts (${f}, ${r})`; return; }
    fwd.set(x, y); back.set(y, x);
  };
  const n = Math.min(A.length, B.length);
  for (let i = 0; i < n; i++) {
    const x = A[i], y = B[i];
    const kname = x.k === 'dispatch' ? x.label : `${x.k}:${x.op}`;
    const e = byKernel[kname] ??= { positions: 0, storageBuffers: 0, uniformBytes: 0, uniformBufferIds: 0, other: 0 };
    let diff = false;
    if (x.k !== y.k) { sameShape = false; iso = false; isoBreak ??= `position ${i}: ${x.k} vs ${y.k}`; d.other++; e.other++; d.positions++; e.positions++; continue; }
    if (x.k === 'dispatch' && y.k === 'dispatch') {
      if (x.pipe !== y.pipe) { d.pipeline++; diff = true; sameShape = false; iso = false; isoBreak ??= `position ${i}: pipeline ${x.label} vs ${y.label}`; }
      if (x.wg.join() !== y.wg.join()) { d.workgroups++; diff = true; sameShape = false; }
      let sb = false, ub = false, ubytes = false;
      for (let j = 0; j < Math.max(x.bufs.length, y.bufs.length); j++) {
        if (x.uni[j]) {
          if (x.bufs[j] !== y.bufs[j]) ub = true;
          if (x.uni[j] !== y.uni[j]) {
            ubytes = true;
            const key = `${x.label}|${x.uni[j]}|${y.uni[j]}`;
            if (!seenChange.has(key) && uniformChanges.length < 40) { seenChange.add(key); uniformChanges.push({ label: x.label, op: x.op, words: wordDiff(x.uni[j], y.uni[j]) }); }
          }
        } else {
          if (x.bufs[j] !== y.bufs[j]) sb = true;
          map(x.bufs[j], y.bufs[j], i);
        }
      }
      if (sb) { d.storageBuffers++; e.storageBuffers++; diff = true; }
      if (ub) { d.uniformBufferIds++; e.uniformBufferIds++; diff = true; }
      if (ubytes) { d.uniformBytes++; e.uniformBytes++; diff = true; }
    } else if (x.k === 'copy' && y.k === 'copy') {
      if (x.src !== y.src || x.dst !== y.dst) { d.copyBuffers++; diff = true; }
      if (x.size !== y.size) { d.other++; diff = true; sameShape = false; }
      map(x.src, y.src, i); map(x.dst, y.dst, i);
    } else if (x.k === 'read' && y.k === 'read') {
      if (x.src !== y.src) { d.copyBuffers++; diff = true; }
      map(x.src, y.src, i);
    } else if ((x.k === 'write' && y.k === 'write') || (x.k === 'upload' && y.k === 'upload')) {
      if (x.dst !== y.dst) { d.copyBuffers++; diff = true; }
      if (x.bytes !== y.bytes) { d.writtenBytes++; diff = true; }
      // a uniform written by queue.writeBuffer is content, not identity: the replay would own it
      if (!(x.k === 'write' && x.uniform)) map(x.dst, y.dst, i);
    }
    if (diff) { d.positions++; e.positions++; }
  }
  for (const k of Object.keys(byKernel)) if (!byKernel[k].positions) delete byKernel[k];
  if (fwdOut && iso) for (const [x, y] of fwd) fwdOut.set(x, y);
  const identical = A.length === B.length && d.positions === 0;
  return {
    a, b, sameLength: A.length === B.length, lengths: [A.length, B.length],
    dispatches: [A.filter((c) => c.k === 'dispatch').length, B.filter((c) => c.k === 'dispatch').length],
    identical, sameShape, differ: d, isomorphic: iso, isomorphicBreak: isoBreak, byKernel, uniformChanges,
  };
}

/** buffers a step reads before it writes them (its inputs: weights, optimizer state, the batch) and those it writes */
function flow(cmds: Cmd[]): { liveIn: Set<number>; written: Set<number>; labelOf: Map<number, string> } {
  const liveIn = new Set<number>(), written = new Set<number>(), labelOf = new Map<number, string>();
  const read = (b: number, l: string) => { if (!written.has(b)) { liveIn.add(b); if (!labelOf.has(b)) labelOf.set(b, l); } };
  for (const c of cmds) {
    if (c.k === 'dispatch') {
      c.bufs.forEach((b, j) => { if (!c.uni[j] && !c.writes.includes(j)) read(b, `${c.label}#${j}`); });
      // a read_write binding may also be read (accumulating GEMMs): count it as an input if not yet written
      c.bufs.forEach((b, j) => { if (!c.uni[j] && c.writes.includes(j)) { if (!written.has(b) && !labelOf.has(b)) labelOf.set(b, `${c.label}#${j}(rw)`); written.add(b); } });
    } else if (c.k === 'copy') { read(c.src, `copy:${c.op}`); written.add(c.dst); }
    else if (c.k === 'read') read(c.src, 'read');
    else if (c.k === 'upload' || (c.k === 'write' && !c.uniform)) written.add(c.dst);
  }
  return { liveIn, written, labelOf };
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

async function main(): Promise<void> {
  if (mode === 'null') {
    const webgpu = await import('webgpu') as unknown as { create(f: string[]): unknown; globals: object };
    Object.assign(globalThis, webgpu.globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create(spec.dawnFlags ?? ['backend=null']) }, configurable: true, writable: true });
  }
  const info = await useBackend('webgpu');
  const be = tf.backend() as Any;
  instrument(be);
  const eng = tf.engine() as unknown as { runKernel: (...a: unknown[]) => unknown };
  const runKernel = eng.runKernel;
  eng.runKernel = function (this: unknown, ...a: unknown[]) {
    kernelStack.push(String(a[0]));
    try { return runKernel.apply(this, a); } finally { kernelStack.pop(); }
  };
  const gpuErrors: string[] = [];
  be.device.onuncapturederror = (e: Any) => { if (gpuErrors.length < 5) gpuErrors.push(String(e.error.message).split('\n')[0]); };

  const model = randomModel(spec.config, { seed: 0 });
  const adapter = injectShareLoRA(model, { r: spec.r, alpha: spec.alpha, targets: spec.targets, share: spec.variant === 'sharea' ? 'A' : 'none', seed: 0 });
  const trainer = new Trainer(model, adapter, { lr: 1e-4, weightDecay: 0.01 });
  // as bench/worker.ts: the null device's statistics are garbage, and would skip the update
  if (mode === 'null') (trainer as unknown as { globalNorm: () => Promise<{ norm: number }> }).globalNorm = async () => ({ norm: 1 });
  const V = model.config.vocabSize;
  const idsArr = new Int32Array(spec.batch * spec.seq);
  let s = 7;
  for (let i = 0; i < idsArr.length; i++) { s = (s * 1103515245 + 12345) >>> 0; idsArr[i] = s % V; }
  const rows = () => Array.from({ length: spec.batch }, (_, b) => Array.from(idsArr.subarray(b * spec.seq, (b + 1) * spec.seq)));
  // the same batch object every step, as a replay would see a fixed input buffer; on the null device as arrays (worker.ts says why)
  const batch = mode === 'null'
    ? { inputIds: rows(), labels: rows() }
    : { inputIds: tf.tensor2d(idsArr, [spec.batch, spec.seq], 'int32'), labels: tf.tensor2d(idsArr, [spec.batch, spec.seq], 'int32') };

  const steps: Array<{ step: number; cmds: Cmd[]; created: Created[]; loss: number; ms: number }> = [];
  for (let i = 0; i <= LAST; i++) {
    const rec = i >= FIRST;
    if (rec) { recording = []; created = []; }
    const t = performance.now();
    const loss = await trainer.step(batch);
    const ms = performance.now() - t;
    if (rec) steps.push({ step: i, cmds: recording!, created: created!, loss, ms });
    recording = undefined; created = undefined;
  }

  const kinds = (c: Cmd[]) => c.reduce<Record<string, number>>((o, x) => { o[x.k] = (o[x.k] ?? 0) + 1; return o; }, {});
  const perStep = steps.map((st) => ({
    step: st.step, loss: st.loss, ms: +st.ms.toFixed(1), commands: st.cmds.length, ...kinds(st.cmds),
    createBuffer: st.created.length,
    createdBy: st.created.reduce<Record<string, number>>((o, c) => { const k = `${c.op} usage=0x${c.usage.toString(16)}${c.mapped ? ' mapped' : ''} ${c.size}B`; o[k] = (o[k] ?? 0) + 1; return o; }, {}),
  }));
  const pairs1: PairReport[] = [], pairs2: PairReport[] = [];
  for (let i = 0; i + 1 < steps.length; i++) pairs1.push(compare(steps[i].cmds, steps[i + 1].cmds, steps[i].step, steps[i + 1].step));
  for (let i = 0; i + 2 < steps.length; i++) pairs2.push(compare(steps[i].cmds, steps[i + 2].cmds, steps[i].step, steps[i + 2].step));
  // is the renaming from one step to the next the same permutation every step? then the exact period is its order
  const fwds = steps.slice(0, -1).map((st, i) => { const m = new Map<number, number>(); compare(st.cmds, steps[i + 1].cmds, 0, 0, m); return m; });
  const samePermutation = fwds.slice(1).map((f, i) => { let same = 0, diff = 0; for (const [x, y] of f) { const g = fwds[i].get(x); if (g === undefined) continue; if (g === y) same++; else diff++; } return { same, diff }; });
  const cycles: Record<number, number> = {};
  let order = 1, openChains = 0;
  {
    const f = fwds[0], seen = new Set<number>();
    for (const x of f.keys()) {
      if (seen.has(x)) continue;
      let y = x, len = 0, closed = false;
      while (!seen.has(y) && f.has(y)) { seen.add(y); y = f.get(y)!; len++; if (y === x) { closed = true; break; } }
      if (closed) { cycles[len] = (cycles[len] ?? 0) + 1; order = order / gcd(order, len) * len; } else openChains++;
    }
  }
  // the state a step carries into the next: inputs of step k+1 that step k wrote (AdamW's new p, m, v) versus inputs both steps share
  const carry = steps.slice(0, -1).map((st, i) => {
    const A = flow(st.cmds), B = flow(steps[i + 1].cmds), f = fwds[i];
    let same = 0, carried = 0, other = 0, pingPong = 0, carriedIsUpdate = 0;
    const carriedBy: Record<string, number> = {}, otherBy: Record<string, number> = {};
    for (const b of B.liveIn) {
      if (A.liveIn.has(b) && f.get(b) === b) same++;
      else if (A.written.has(b)) {
        carried++;
        const l = B.labelOf.get(b) ?? '?'; carriedBy[l] = (carriedBy[l] ?? 0) + 1;
        // the step-k input playing b's role: if step k wrote b, the new value replaced it (state updated out of place)
        const x = [...f].find(([, y]) => y === b)?.[0];
        if (x !== undefined && A.liveIn.has(x)) carriedIsUpdate++;
        if (x !== undefined && i + 1 < fwds.length && fwds[i + 1].get(b) === x) pingPong++;
      } else { other++; const l = B.labelOf.get(b) ?? '?'; otherBy[l] = (otherBy[l] ?? 0) + 1; }
    }
    return { a: st.step, b: steps[i + 1].step, liveIn: B.liveIn.size, sameBuffer: same, carriedFromPrevious: carried, carriedRoleIsInput: carriedIsUpdate, carriedPingPong: pingPong, other, carriedBy, otherBy };
  });
  // the smallest lag at which a step repeats an earlier one exactly, if any within the window
  const lagExact: Array<{ step: number; lag: number | null }> = steps.map((st, i) => {
    for (let l = 1; l <= i; l++) if (compare(steps[i - l].cmds, st.cmds, 0, 0).identical) return { step: st.step, lag: l };
    return { step: st.step, lag: null };
  });
  // which bound storage buffers change: ids per (dispatch position, binding), how many distinct over the 6 steps
  const first = steps[0].cmds;
  const distinct: number[] = [];
  let positionsStable = 0, positionsCycle2 = 0, positionsOther = 0;
  if (steps.every((st) => st.cmds.length === first.length)) {
    first.forEach((c, i) => {
      if (c.k !== 'dispatch') return;
      c.bufs.forEach((_, j) => {
        if (c.uni[j]) return;
        const seq = steps.map((st) => (st.cmds[i] as Dispatch).bufs[j]);
        const set = new Set(seq);
        distinct.push(set.size);
        if (set.size === 1) positionsStable++;
        else if (seq.every((v, k) => k < 2 || v === seq[k - 2])) positionsCycle2++;
        else positionsOther++;
      });
    });
  }
  const bindingHist = distinct.reduce<Record<number, number>>((o, n) => { o[n] = (o[n] ?? 0) + 1; return o; }, {});

  const result = {
    date: new Date().toISOString(), mode, device: info.device, fixture, recordedSteps: [FIRST, LAST],
    gpuErrors,
    perStep,
    lagExact,
    permutation: { samePermutationEachStep: samePermutation, cycleLengths: cycles, order, openChains },
    carry,
    storageBindings: { stable: positionsStable, period2: positionsCycle2, other: positionsOther, distinctIdsHistogram: bindingHist },
    pairs1, pairs2,
    // one recorded step in full, to read the sequence by eye
    sample: steps[0].cmds.map((c) => c.k === 'dispatch' ? { ...c, uni: c.uni.map((u) => u.length > 64 ? `${u.slice(0, 64)}…` : u) } : c.k === 'copy' || c.k === 'read' ? c : { ...c, bytes: c.bytes.length > 64 ? `${c.bytes.slice(0, 64)}…(${c.bytes.length / 2}B)` : c.bytes }),
  };
  mkdirSync('bench/results', { recursive: true });
  const out = `bench/results/replay-probe-${result.date.slice(0, 10)}-${mode}.json`;
  writeFileSync(out, JSON.stringify(result, null, 1));

  console.log(`device: ${info.device} (${mode}); steps ${FIRST}..${LAST}; losses ${steps.map((st) => st.loss.toFixed(4)).join(' ')}`);
  if (gpuErrors.length) console.log(`GPU errors: ${gpuErrors.join(' | ')}`);
  for (const p of perStep) console.log(`step ${p.step}: ${p.commands} commands (${JSON.stringify(kinds(steps.find((st) => st.step === p.step)!.cmds))}), createBuffer ${p.createBuffer} ${JSON.stringify(p.createdBy)}`);
  const line = (p: PairReport) => `  ${p.a}->${p.b}: identical=${p.identical} sameShape=${p.sameShape} isomorphic=${p.isomorphic}${p.isomorphicBreak ? ` (${p.isomorphicBreak})` : ''} differ=${JSON.stringify(p.differ)}`;
  console.log('lag 1:'); pairs1.forEach((p) => console.log(line(p)));
  console.log('lag 2:'); pairs2.forEach((p) => console.log(line(p)));
  console.log(`exact-repeat lag per step: ${lagExact.map((l) => `${l.step}:${l.lag ?? '-'}`).join(' ')}`);
  console.log(`storage bindings over the 6 steps: ${JSON.stringify(result.storageBindings)}`);
  const top = (p: PairReport) => Object.entries(p.byKernel).sort((x, y) => y[1].positions - x[1].positions).slice(0, 12).map(([k, v]) => `${k}×${v.positions}(s${v.storageBuffers}/ub${v.uniformBytes}/uid${v.uniformBufferIds}/o${v.other})`).join(', ');
  console.log(`differing kernels ${pairs1[0].a}->${pairs1[0].b}: ${top(pairs1[0])}`);
  console.log(`differing kernels ${pairs2[0].a}->${pairs2[0].b}: ${top(pairs2[0])}`);
  console.log(`uniform changes ${pairs1[0].a}->${pairs1[0].b}: ${pairs1[0].uniformChanges.slice(0, 8).map((u) => `${u.label}[${u.words.map(([w, x, y]) => `${w}:${x}->${y}`).join(' ')}]`).join('; ')}`);
  console.log(`renaming step->step+1 the same each step: ${JSON.stringify(samePermutation)}; its cycles ${JSON.stringify(cycles)} (order ${order}, open chains ${openChains})`);
  for (const c of carry) console.log(`  inputs of ${c.b}: ${c.liveIn} (same buffer as ${c.a}: ${c.sameBuffer}, written by ${c.a}: ${c.carriedFromPrevious} [role was an input of ${c.a}: ${c.carriedRoleIsInput}, ping-pong: ${c.carriedPingPong}], other: ${c.other} ${JSON.stringify(c.otherBy)})`);
  console.log(`  carried by ${JSON.stringify(carry[0].carriedBy)}`);
  console.log(`wrote ${out}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
