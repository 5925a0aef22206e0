/**
 * safetensors: u64-LE header length N | N bytes of JSON | data buffer.
 * Every check the Rust reader makes is made here, plus a refusal of repeated
 * names; the header is validated before any tensor is read, and what is
 * allocated is bounded by the bytes the file really has, so a hostile file
 * fails fast with a CheckpointError naming it.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { parseJsonStrict } from '../util/json.js';
import { openRegularFile } from './config.js';
import { CheckpointError } from '../util/errors.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'I16' | 'I8' | 'U8' | 'BOOL';
const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

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
interface Header { entries: Entry[]; metadata: Record<string, string>; dataStart: number }

/** N from the first 8 bytes, checked against the file's length before anything else is read. */
function headerLength(first8: Uint8Array, fileLen: number, file: string): number {
  if (fileLen < 8) throw new CheckpointError(file, `file is ${fileLen} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileLen - 8)) throw new CheckpointError(file, `header length ${n} is larger than the file (${fileLen} bytes)`);
  if (n > BigInt(MAX_HEADER)) throw new CheckpointError(file, `header length ${n} exceeds the 100 MB limit`);
  return Number(n);
}

function parseHeader(headerBytes: Uint8Array, fileLen: number, file: string): Header {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch (e) {
    throw new CheckpointError(file, `header is not valid UTF-8 (${(e as Error).message})`);
  }
  const header = parseJsonStrict(text, file, 'header');
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new CheckpointError(file, 'header is not a JSON object');
  const dataStart = 8 + headerBytes.byteLength;
  const dataLen = fileLen - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
        throw new CheckpointError(file, '__metadata__ must be an object of strings');
      metadata = v as Record<string, string>;
      continue;
    }
    entries.push(entry(name, v, dataLen, file));
  }
  // The format requires the buffers to tile the data region exactly, in order.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) throw new CheckpointError(file, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap the previous tensor`);
    if (e.begin > pos) throw new CheckpointError(file, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] are misaligned: they leave a gap at byte ${pos} of the data buffer`);
    pos = e.end;
  }
  if (pos !== dataLen) throw new CheckpointError(file, `data buffer is ${dataLen} bytes but the tensors cover ${pos}`);
  return { entries, metadata, dataStart };
}

function entry(name: string, v: unknown, dataLen: number, file: string): Entry {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(file, `tensor "${name}": entry is not an object`);
  const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  // own keys only: "toString" or "constructor" must not pass as a dtype
  if (typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, e.dtype)) throw new CheckpointError(file, `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CheckpointError(file, `tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CheckpointError(file, `tensor "${name}": data_offsets ${JSON.stringify(off)} is not [begin, end]`);
  const [begin, end] = off as [number, number];
  if (end < begin) throw new CheckpointError(file, `tensor "${name}": data_offsets [${begin}, ${end}] end before begin`);
  if (end > dataLen) throw new CheckpointError(file, `tensor "${name}": data_offsets [${begin}, ${end}] are out of range: past the end of the ${dataLen}-byte data buffer`);
  const dtype = e.dtype as DType;
  const shape = e.shape as number[];
  // a product past 2^53 rounds but stays above any real byte count, so it still mismatches
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel * DTYPE_BYTES[dtype] !== end - begin) throw new CheckpointError(file, `tensor "${name}": size mismatch: ${end - begin} bytes for ${dtype} × [${shape.join(', ')}] = ${numel * DTYPE_BYTES[dtype]} bytes`);
  return { name, dtype, shape, begin, end };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

let HALF: Float32Array | undefined;
/** float32 of each of the 65,536 half-precision bit patterns */
function halfTable(): Float32Array {
  if (!HALF) {
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF[h] = halfToFloat(h);
  }
  return HALF;
}

/** bytes (exactly one tensor's) -> float32 or int32 values; `owned` bytes may become the result */
function decode(bytes: Uint8Array, dtype: DType, file: string, name: string, owned = false): Float32Array | Int32Array {
  try {
    return decodeValues(bytes, dtype, file, name, owned);
  } catch (e) {
    // a widened copy (F16 → float32 doubles it) may not fit where the bytes did
    if (e instanceof RangeError) throw new CheckpointError(file, `tensor "${name}" (${dtype}, ${bytes.byteLength} bytes) cannot be decoded in memory: ${e.message}`);
    throw e;
  }
}

function decodeValues(bytes: Uint8Array, dtype: DType, file: string, name: string, owned: boolean): Float32Array | Int32Array {
  const numel = bytes.byteLength / DTYPE_BYTES[dtype];
  if (dtype === 'F32' && LITTLE_ENDIAN) return new Float32Array((owned && bytes.byteOffset === 0 ? bytes : bytes.slice()).buffer, 0, numel);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': { const o = new Float32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getFloat32(4 * i, true); return o; }
    case 'F64': { const o = new Float32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getFloat64(8 * i, true); return o; }
    case 'F16': {
      // every half value looked up in a table of all 65,536: the embedded models are stored in F16 and decoding them
      // with halfToFloat's powers of two took 12% of a notebook's smoke run on wasm (it loads the model for each run)
      const t = halfTable(), o = new Float32Array(numel);
      if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
        const u = new Uint16Array(bytes.buffer, bytes.byteOffset, numel);
        for (let i = 0; i < numel; i++) o[i] = t[u[i]];
      } else for (let i = 0; i < numel; i++) o[i] = t[view.getUint16(2 * i, true)];
      return o;
    }
    case 'BF16': {
      const o = new Float32Array(numel); const u = new Uint32Array(o.buffer);
      for (let i = 0; i < numel; i++) u[i] = view.getUint16(2 * i, true) << 16;
      return o;
    }
    case 'I32': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt32(4 * i, true); return o; }
    case 'I16': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt16(2 * i, true); return o; }
    case 'I8': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getInt8(i); return o; }
    case 'U8': case 'BOOL': { const o = new Int32Array(numel); for (let i = 0; i < numel; i++) o[i] = view.getUint8(i); return o; }
    case 'I64': {
      const o = new Int32Array(numel);
      for (let i = 0; i < numel; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) throw new CheckpointError(file, `tensor "${name}": I64 value ${v} does not fit int32`);
        o[i] = Number(v);
      }
      return o;
    }
  }
}

/** Parse a safetensors buffer. `names` limits which tensors are decoded (all are validated). */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>', names?: Set<string>): SafetensorsFile {
  const n = headerLength(buf, buf.byteLength, file);
  const { entries, metadata, dataStart } = parseHeader(buf.subarray(8, 8 + n), buf.byteLength, file);
  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    if (names && !names.has(e.name)) continue;
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(buf.subarray(dataStart + e.begin, dataStart + e.end), e.dtype, file, e.name) });
  }
  return { tensors, metadata };
}

/** readSync moves at most 2^31 − 1 bytes per call; larger tensors (a 7B model's embeddings in F32) are read in parts */
const READ_CHUNK = 1 << 30;

/** Read exactly `length` bytes at `position`; a file that shrinks while being read is an error, not a short tensor. */
function readAt(fd: number, position: number, length: number, file: string, what = 'the header'): Uint8Array {
  let out: Uint8Array;
  try {
    out = new Uint8Array(length);
  } catch (e) {
    throw new CheckpointError(file, `${what} is ${length} bytes, which this process cannot hold in memory at once (${(e as Error).message}); free memory, or raise Node's limit (node --max-old-space-size) if that is the cap`);
  }
  for (let got = 0; got < length;) {
    let n: number;
    try {
      n = readSync(fd, out, got, Math.min(READ_CHUNK, length - got), position + got);
    } catch (e) {
      throw new CheckpointError(file, `cannot read ${what} (${(e as Error).message})`);
    }
    if (n === 0) throw new CheckpointError(file, `file ended at byte ${position + got} while reading (it changed while being read)`);
    got += n;
  }
  return out;
}

/**
 * Read a .safetensors file: the header first (validated against the file's
 * size), then only the tensors asked for, one at a time.
 */
export function readSafetensors(path: string, names?: Set<string>): SafetensorsFile {
  const fd = openRegularFile(path);
  try {
    const size = fstatSync(fd).size;
    const n = headerLength(readAt(fd, 0, Math.min(8, size), path), size, path);
    const { entries, metadata, dataStart } = parseHeader(readAt(fd, 8, n, path), size, path);
    const tensors = new Map<string, RawTensor>();
    for (const e of entries) {
      if (names && !names.has(e.name)) continue;
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(readAt(fd, dataStart + e.begin, e.end - e.begin, path, `tensor "${e.name}"`), e.dtype, path, e.name, true) });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
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
