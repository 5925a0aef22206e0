/**
 * safetensors: u64-LE header length N | N bytes of JSON | data buffer.
 * Every check the Rust reader makes is made here, and nothing is allocated
 * beyond the file's own size, so a hostile file fails fast with a named error.
 */
import { readFileSync, statSync } from 'node:fs';
import { CheckpointError } from './errors.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'I16' | 'I8' | 'U8' | 'BOOL';
const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100_000_000;

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** float32 for float dtypes, int32 for integer/bool dtypes (upcast or narrowed) */
  data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

interface Entry { name: string; dtype: DType; shape: number[]; begin: number; end: number }

function parseHeader(buf: Uint8Array, file: string): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (buf.byteLength < 8) throw new CheckpointError(file, `file is ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(buf.byteLength - 8)) throw new CheckpointError(file, `header length ${n} is larger than the file (${buf.byteLength} bytes)`);
  if (n > BigInt(MAX_HEADER)) throw new CheckpointError(file, `header length ${n} exceeds the 100 MB limit`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new CheckpointError(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new CheckpointError(file, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
        throw new CheckpointError(file, '__metadata__ must be an object of strings');
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw new CheckpointError(file, `tensor "${name}": entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) throw new CheckpointError(file, `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CheckpointError(file, `tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CheckpointError(file, `tensor "${name}": data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    const [begin, end] = off as [number, number];
    if (end < begin) throw new CheckpointError(file, `tensor "${name}": data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLen) throw new CheckpointError(file, `tensor "${name}": data_offsets [${begin}, ${end}] run past the data buffer (${dataLen} bytes)`);
    const dtype = e.dtype as DType;
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (numel * DTYPE_BYTES[dtype] !== end - begin) throw new CheckpointError(file, `tensor "${name}": ${end - begin} bytes do not match ${dtype} × [${(e.shape as number[]).join(', ')}] = ${numel * DTYPE_BYTES[dtype]} bytes`);
    entries.push({ name, dtype, shape: e.shape as number[], begin, end });
  }
  // The format requires the buffers to tile the data region exactly, in order.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) throw new CheckpointError(file, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap the previous tensor`);
    if (e.begin > pos) throw new CheckpointError(file, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] leave a gap at byte ${pos}`);
    pos = e.end;
  }
  if (pos !== dataLen) throw new CheckpointError(file, `data buffer is ${dataLen} bytes but the tensors cover ${pos}`);
  return { entries, metadata, dataStart };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(view: DataView, at: number, dtype: DType, numel: number, file: string, name: string): Float32Array | Int32Array {
  switch (dtype) {
    case 'F32': { const o = new Float32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getFloat32(at + 4 * i, true); return o; }
    case 'F64': { const o = new Float32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getFloat64(at + 8 * i, true); return o; }
    case 'F16': { const o = new Float32Array(numel); for (let i = 0; i < numel; i++) o[i] = halfToFloat(view.getUint16(at + 2 * i, true)); return o; }
    case 'BF16': {
      const o = new Float32Array(numel); const u = new Uint32Array(o.buffer);
      for (let i = 0; i < numel; i++) u[i] = view.getUint16(at + 2 * i, true) << 16;
      return o;
    }
    case 'I32': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt32(at + 4 * i, true); return o; }
    case 'I16': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt16(at + 2 * i, true); return o; }
    case 'I8': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt8(at + i); return o; }
    case 'U8': case 'BOOL': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getUint8(at + i); return o; }
    case 'I64': {
      const o = new Int32Array(numel);
      for (let i = 0; i < numel; i++) {
        const v = view.getBigInt64(at + 8 * i, true);
        if (v > 2147483647n || v < -2147483648n) throw new CheckpointError(file, `tensor "${name}": I64 value ${v} does not fit int32`);
        o[i] = Number(v);
      }
      return o;
    }
  }
}

/** Parse a safetensors buffer. `names` limits which tensors are decoded. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>', names?: Set<string>): SafetensorsFile {
  const { entries, metadata, dataStart } = parseHeader(buf, file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    if (names && !names.has(e.name)) continue;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(view, dataStart + e.begin, e.dtype, numel, file, e.name) });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string, names?: Set<string>): SafetensorsFile {
  let buf: Buffer;
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    buf = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(path, `cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path, names);
}

export interface TensorToWrite { dtype: 'F32' | 'F16' | 'I32'; shape: number[]; data: Float32Array | Int32Array }

/** round-to-nearest-even float32 -> IEEE half bits */
function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** Serialise like the reference writer: sorted names, header padded with spaces to 8 bytes. */
export function serializeSafetensors(tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = map.get(name)!;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`tensor "${name}": shape [${t.shape}] has ${numel} elements but data has ${t.data.length}`);
    const bytes = (t.dtype === 'F16' ? 2 : 4) * numel;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hb = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hb.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const name of names) {
    const t = map.get(name)!;
    if (t.dtype === 'F16') {
      for (let i = 0; i < t.data.length; i++, at += 2) view.setUint16(at, floatToHalf(t.data[i]), true);
    } else {
      for (let i = 0; i < t.data.length; i++, at += 4) {
        if (t.dtype === 'F32') view.setFloat32(at, t.data[i], true); else view.setInt32(at, t.data[i], true);
      }
    }
  }
  return out;
}
