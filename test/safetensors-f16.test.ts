/**
 * F16 tensors decode to the float32 value of each half-precision bit pattern (IEEE 754 binary16: subnormals, ±0,
 * ±Inf, NaN), from aligned bytes and from a tensor that starts at an odd offset of the data buffer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors } from '../src/models/safetensors.js';

/** binary16 by its definition, independently of the library's decoder */
function half(h: number): number {
  const sign = h >> 15 ? -1 : 1, exp = (h >> 10) & 31, frac = h & 1023;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (exp ? (1024 + frac) * 2 ** (exp - 25) : frac * 2 ** -24);
}

/** a safetensors buffer: an I8 tensor of `pad` bytes, then every half bit pattern as one F16 tensor */
function file(pad: number): Uint8Array {
  const n = 65536;
  const header = JSON.stringify({
    ...(pad ? { pad: { dtype: 'I8', shape: [pad], data_offsets: [0, pad] } } : {}),
    all: { dtype: 'F16', shape: [n], data_offsets: [pad, pad + 2 * n] },
  });
  const h = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + h.length + pad + 2 * n);
  new DataView(buf.buffer).setBigUint64(0, BigInt(h.length), true);
  buf.set(h, 8);
  const dv = new DataView(buf.buffer, 8 + h.length + pad);
  for (let i = 0; i < n; i++) dv.setUint16(2 * i, i, true);
  return buf;
}

describe('safetensors F16', () => {
  for (const pad of [0, 1]) {
    it(`decodes all 65,536 bit patterns (${pad ? 'at an odd offset' : 'aligned'})`, () => {
      const got = parseSafetensors(file(pad)).tensors.get('all')!.data as Float32Array;
      assert.equal(got.length, 65536);
      for (let i = 0; i < 65536; i++) {
        const want = half(i);
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]), `0x${i.toString(16)}: NaN, got ${got[i]}`);
        else assert.ok(Object.is(got[i], Math.fround(want)), `0x${i.toString(16)}: ${want}, got ${got[i]}`);
      }
    });
  }
});
