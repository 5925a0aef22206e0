/**
 * VeRA's frozen projections as PEFT draws them: a CPU torch.Generator
 * seeded with `projection_prng_key` fills vera_A [r, max d_in] and then
 * vera_B [max d_out, r] with PEFT's `_kaiming_init` (uniform in ±sqrt(6 /
 * fan_in)). Reproducing torch's generator lets a folder saved with
 * save_projection=false load here too; folders that carry the projections
 * (PEFT's default) are loaded from their tensors instead.
 *
 * torch's CPU generator is MT19937; `uniform_` on float32 takes the low 24
 * bits of one 32-bit draw per element: x = (u & 0xffffff)·2^-24, value =
 * x·(to − from) + from in float32. Whether that last line is compiled into
 * a fused multiply-add depends on torch's build, so both roundings are
 * offered; the VeRA fixture test says which one the reference build used.
 */

/** MT19937 as at::mt19937 (and std::mt19937): 32-bit outputs from a 32-bit seed. */
export class MT19937 {
  private readonly s = new Uint32Array(624);
  private i = 624;

  constructor(seed: number) {
    this.s[0] = seed >>> 0;
    for (let j = 1; j < 624; j++) {
      const p = this.s[j - 1] ^ (this.s[j - 1] >>> 30);
      // 1812433253·p + j mod 2^32, split so the product stays exact in doubles
      this.s[j] = ((((p & 0xffff0000) >>> 16) * 1812433253) << 16) + (p & 0x0000ffff) * 1812433253 + j;
    }
  }

  next(): number {
    if (this.i >= 624) this.twist();
    let y = this.s[this.i++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.s;
    for (let k = 0; k < 624; k++) {
      const y = (s[k] & 0x80000000) | (s[(k + 1) % 624] & 0x7fffffff);
      s[k] = s[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.i = 0;
  }
}

export type Rounding = 'separate' | 'fma';

/** torch's `tensor.uniform_(from, to, generator=g)` for a float32 tensor of n elements. */
export function torchUniform(g: MT19937, n: number, from: number, to: number, rounding: Rounding = 'separate'): Float32Array {
  const lo = Math.fround(from), width = Math.fround(Math.fround(to) - lo);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = (g.next() & 0xffffff) / 16777216;
    // x·width is exact in a double (24 × 24 bits); fma rounds once, separate twice
    out[i] = rounding === 'fma' ? Math.fround(x * width + lo) : Math.fround(Math.fround(x * width) + lo);
  }
  return out;
}

/** PEFT's `_kaiming_init`: bound = sqrt(3)·sqrt(2)/sqrt(fan_in), computed in doubles as Python does. */
function kaiming(g: MT19937, rows: number, cols: number, rounding: Rounding): Float32Array {
  const std = Math.sqrt(2) / Math.sqrt(cols);
  const bound = Math.sqrt(3.0) * std;
  return torchUniform(g, rows * cols, -bound, bound, rounding);
}

/** vera_A [r, dIn] and vera_B [dOut, r] for `projection_prng_key` = seed, drawn in PEFT's order. */
export function veraProjection(seed: number, r: number, dIn: number, dOut: number, rounding: Rounding = 'separate'): { A: Float32Array; B: Float32Array } {
  // torch seeds mt19937 with the low 32 bits of the 64-bit seed
  const g = new MT19937(Number(BigInt(seed) & 0xffffffffn));
  const A = kaiming(g, r, dIn, rounding);
  const B = kaiming(g, dOut, r, rounding);
  return { A, B };
}
