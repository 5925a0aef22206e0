/**
 * The GEMM tiles and kernel variants the benchmark measures beside the
 * library's three (src/backend/webgpu/gemm.ts), none of which the library's
 * tile rule picks (bench/NOTES.md, "GEMM variants" and "K-fastest loads"):
 *   - other tile shapes (128×64, 64×128, 64×64 with 8×8 per thread);
 *   - double-buffered shared memory (`db`): the next K-slice is stored while
 *     the current one is used, one barrier per slice instead of two;
 *   - K-fastest loads of K-contiguous operands (`co`): coalesced global
 *     reads, a 4-way conflicted shared store;
 *   - a 32-deep K-slice (`128x128k32`).
 * registerGemmVariants() makes them nameable (the sweep's tile attribute,
 * SHARELORA_GEMM_TILE); SHARELORA_GEMM_K32=1 and SHARELORA_GEMM_COALESCED=1
 * also put them into the tile rule, for A/B runs of a whole training step.
 *
 * labBody is the library's kernel source from before the variants moved
 * here, with both switches; on plain tiles it emits the library's source.
 */
import { flags } from '../src/backend/flags.js';
import { registerTile, setTileRule, type GemmBodyOptions, type GemmTile } from '../src/backend/webgpu/gemm.js';

interface LabTile extends GemmTile { db?: boolean; co?: boolean }

const dbVariant = { name: 'db', body: (t: GemmTile, o: GemmBodyOptions) => labBody({ ...t, db: true }, o) };
const coVariant = { name: 'co', body: (t: GemmTile, o: GemmBodyOptions) => labBody({ ...t, co: true }, o) };

export const VARIANT_TILES: Record<string, GemmTile> = {
  '128x64': { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8 },
  '64x128': { BM: 64, BN: 128, BK: 16, TM: 8, TN: 8 },
  '64x64': { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 },
  '128x128db': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: dbVariant },
  '64x64t4db': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, variant: dbVariant },
  '128x128k32': { BM: 128, BN: 128, BK: 32, TM: 8, TN: 8 },
  '128x128co': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: coVariant },
  '64x64t4co': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, variant: coVariant },
  '32x32co': { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4, variant: coVariant },
};

let registered = false;

/** Registers the variant tiles, and the tile rule SHARELORA_GEMM_K32 / SHARELORA_GEMM_COALESCED ask for. */
export function registerGemmVariants(): void {
  if (registered) return;
  registered = true;
  for (const [name, tile] of Object.entries(VARIANT_TILES)) registerTile(name, tile);
  const k32 = flags.gemmK32, coalesced = flags.gemmCoalesced;
  if (k32 || coalesced) setTileRule((M, N, batch, K, chosen) => coalescedRule(k32 ? k32Rule(M, N, batch, K, chosen) : chosen, coalesced));
}

/** The LM head's forward alone ran 7.3 ms against 10.3 on it (run 6), but the step lost (run 8). */
function k32Rule(M: number, N: number, batch: number, K: number, chosen: GemmTile): GemmTile {
  const SMS = flags.gpuSms;
  const tiles = Math.ceil(M / 128) * Math.ceil(N / 128) * batch;
  return M > 64 && N > 64 && tiles >= 16 * SMS && K <= 4096 ? VARIANT_TILES['128x128k32'] : chosen;
}

/** The same tile with K-fastest loads, where one is registered (every 16-deep, single-buffered tile the rule picks). */
function coalescedRule(chosen: GemmTile, on: boolean): GemmTile {
  if (!on || chosen.variant || chosen.BK !== 16) return chosen;
  const co = Object.values(VARIANT_TILES).find((t) => t.variant === coVariant && t.BM === chosen.BM && t.BN === chosen.BN && t.TM === chosen.TM && t.TN === chosen.TN);
  return co ?? { ...chosen, variant: coVariant };
}

function labBody(t: LabTile, { transA, transB, vecA, vecB, vecC, bias, lowRank }: GemmBodyOptions): string {
  const { BM, BN, BK, TM, TN } = t;
  const hm = TM / 4, hn = TN / 4;
  const WX = BN / TN, WY = BM / TM, NT = WX * WY;
  const nA = (BM * BK) / 4 / NT, nB = (BN * BK) / 4 / NT;
  if (!Number.isInteger(nA) || !Number.isInteger(nB)) throw new Error(`bad GEMM tile ${JSON.stringify(t)}`);
  // K-contiguous operands: which thread loads which (row, K-quad). Row-fastest makes the
  // transposing shared store conflict-free; K-fastest (co) lets the BK/4 threads of a row
  // read its BK floats as one contiguous run (coalesced global loads).
  const rowsOf = (r: string, rows: number) => t.co
    ? `let ${r} = v / ${BK / 4}u; let kq = v % ${BK / 4}u;`
    : `let ${r} = v % ${rows}u; let kq = v / ${rows}u;`;
  const L: string[] = [];
  const nb = t.db ? 2 : 1;
  L.push(`var<workgroup> As : array<vec4<f32>, ${(nb * BK * BM) / 4}>;`);
  L.push(`var<workgroup> Bs : array<vec4<f32>, ${(nb * BK * BN) / 4}>;`);
  // global -> register loads of one K-slice (starting at k0) and register -> shared stores.
  // A and B are the same problem: rows of the tile's side (M for A, N for B) by BK, stored
  // either K-contiguous (A as [M, K], B as [N, K]) or row-contiguous ([K, M] / [K, N]).
  interface Operand { X: string; reg: string; n: number; rows: number; r0: string; R: string; ld: string; off: string; w: string; kContig: boolean; vec: boolean }
  const opA: Operand = { X: 'A', reg: 'ra', n: nA, rows: BM, r0: 'm0', R: 'P.M', ld: 'P.lda', off: 'aOff', w: 'wa', kContig: !transA, vec: vecA };
  const opB: Operand = { X: 'B', reg: 'rb', n: nB, rows: BN, r0: 'n0', R: 'P.N', ld: 'P.ldb', off: 'bOff', w: 'wb', kContig: transB, vec: vecB };
  const load = (o: Operand): string => {
    const s: string[] = [];
    for (let i = 0; i < o.n; i++) {
      const r = `${o.reg}${i}`;
      s.push(`{ let v = lid + ${i * NT}u;`);
      if (o.kContig) {
        // a row's BK floats are contiguous; rowsOf picks which thread loads which (row, K-quad)
        s.push(`${rowsOf('rr', o.rows)} let gr = ${o.r0} + rr; let gk = k0 + kq * 4u;`);
        if (o.vec) s.push(`${r} = vec4<f32>(0.0); if (gr < ${o.R} && gk < P.K) { ${r} = ${o.X}[(${o.off} + gr * ${o.ld} + gk) / 4u]; }`);
        else s.push(`for (var c = 0u; c < 4u; c++) { ${r}[c] = 0.0; if (gr < ${o.R} && gk + c < P.K) { ${r}[c] = ${o.X}[${o.off} + gr * ${o.ld} + gk + c]; } }`);
      } else {
        // a K-row of the tile is \`rows\` contiguous floats
        s.push(`let kk = v / ${o.rows / 4}u; let rq = v % ${o.rows / 4}u; let gk = k0 + kk; let gr = ${o.r0} + rq * 4u;`);
        if (o.vec) s.push(`${r} = vec4<f32>(0.0); if (gk < P.K && gr < ${o.R}) { ${r} = ${o.X}[(${o.off} + gk * ${o.ld} + gr) / 4u]; }`);
        else s.push(`for (var c = 0u; c < 4u; c++) { ${r}[c] = 0.0; if (gk < P.K && gr + c < ${o.R}) { ${r}[c] = ${o.X}[${o.off} + gk * ${o.ld} + gr + c]; } }`);
      }
      s.push('}');
    }
    return s.join('\n');
  };
  const store = (o: Operand): string => {
    const s: string[] = [];
    for (let i = 0; i < o.n; i++) {
      s.push(`{ let v = lid + ${i * NT}u;`);
      if (!o.kContig) s.push(`${o.X}s[${o.w} + v] = ${o.reg}${i};`); // v = kk*(rows/4) + rq already
      else s.push(`${rowsOf('rr', o.rows)} for (var c = 0u; c < 4u; c++) { ${o.X}s[${o.w} + (kq * 4u + c) * ${o.rows / 4}u + rr / 4u][rr % 4u] = ${o.reg}${i}[c]; }`);
      s.push('}');
    }
    return s.join('\n');
  };
  // accumulators acc_{row}_{j}: row in [0, TM), j in [0, hn): vec4 over 4 columns
  const accDecl: string[] = [];
  for (let r = 0; r < TM; r++) for (let j = 0; j < hn; j++) accDecl.push(`var acc_${r}_${j} = vec4<f32>(0.0);`);
  const inner: string[] = [];
  for (let i = 0; i < hm; i++) inner.push(`let a${i} = As[sa0 + kk * ${BM / 4}u + ${(i * BM) / hm / 4}u + ty];`);
  for (let j = 0; j < hn; j++) inner.push(`let b${j} = Bs[sb0 + kk * ${BN / 4}u + ${(j * BN) / hn / 4}u + tx];`);
  for (let i = 0; i < hm; i++) for (let r = 0; r < 4; r++) for (let j = 0; j < hn; j++) {
    inner.push(`acc_${i * 4 + r}_${j} = fma(vec4<f32>(a${i}[${r}]), b${j}, acc_${i * 4 + r}_${j});`);
  }
  // epilogue per (row r, column group j)
  const epi: string[] = [];
  for (let i = 0; i < hm; i++) for (let r = 0; r < 4; r++) {
    const R = i * 4 + r;
    epi.push(`{ let row = m0 + ${(i * BM) / hm}u + ty * 4u + ${r}u;`);
    if (lowRank) epi.push(`let urow = min(row, P.M - 1u) * P.R;`);
    for (let j = 0; j < hn; j++) {
      epi.push(`{ let col = n0 + ${(j * BN) / hn}u + tx * 4u;`);
      epi.push(`var o = acc_${R}_${j} * P.alpha;`);
      if (lowRank) {
        epi.push(`for (var q = 0u; q < P.R; q++) { let uq = U[urow + q] * P.lrs; var vv = vec4<f32>(0.0);`);
        epi.push(`for (var c = 0u; c < 4u; c++) { let cc = min(col + c, P.N - 1u); vv[c] = ${lowRank === 'T' ? 'V[cc * P.R + q]' : 'V[q * P.N + cc]'}; }`);
        epi.push(`o = fma(vec4<f32>(uq), vv, o); }`);
      }
      if (bias) epi.push(`for (var c = 0u; c < 4u; c++) { o[c] += bias[min(col + c, P.N - 1u)]; }`);
      epi.push(`if (row < P.M) {`);
      if (vecC) epi.push(`if (col < P.N) { C[(cOff + row * P.ldc + col) / 4u] = o; }`);
      else epi.push(`for (var c = 0u; c < 4u; c++) { if (col + c < P.N) { C[cOff + row * P.ldc + col + c] = o[c]; } }`);
      epi.push('} }');
    }
    epi.push('}');
  }
  const regs: string[] = [];
  for (let i = 0; i < nA; i++) regs.push(`var ra${i} = vec4<f32>(0.0);`);
  for (let i = 0; i < nB; i++) regs.push(`var rb${i} = vec4<f32>(0.0);`);
  L.push(`
@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let tx = l3.x; let ty = l3.y; let lid = ty * ${WX}u + tx;
  let n0 = w3.x * ${BN}u; let m0 = w3.y * ${BM}u; let z = w3.z;
  let aOff = (z / P.aH) * P.sA + (z % P.aH) * P.hsA + P.oA;
  let bOff = (z / P.bH) * P.sB + ((z % P.bH) / P.bRep) * P.hsB + P.oB;
  let cOff = (z / P.cH) * P.sC + (z % P.cH) * P.hsC + P.oC;
  ${accDecl.join('\n  ')}
  ${regs.join('\n  ')}
  var k0 = 0u;
  ${load(opA)}
  ${load(opB)}
  let nk = (P.K + ${BK - 1}u) / ${BK}u;
  ${t.db ? `
  // slice t is read from buffer t % 2 while slice t + 1 is stored into the other
  var wa = 0u; var wb = 0u;
  ${store(opA)}
  ${store(opB)}
  workgroupBarrier();
  for (var t = 0u; t < nk; t++) {
    let sa0 = (t % 2u) * ${(BK * BM) / 4}u;
    let sb0 = (t % 2u) * ${(BK * BN) / 4}u;
    k0 = (t + 1u) * ${BK}u;
    if (t + 1u < nk) {
      ${load(opA)}
      ${load(opB)}
    }
    for (var kk = 0u; kk < ${BK}u; kk++) {
      ${inner.join('\n      ')}
    }
    if (t + 1u < nk) {
      wa = ((t + 1u) % 2u) * ${(BK * BM) / 4}u;
      wb = ((t + 1u) % 2u) * ${(BK * BN) / 4}u;
      ${store(opA)}
      ${store(opB)}
    }
    workgroupBarrier();
  }` : `
  let wa = 0u; let wb = 0u; let sa0 = 0u; let sb0 = 0u;
  for (var t = 0u; t < nk; t++) {
    ${store(opA)}
    ${store(opB)}
    workgroupBarrier();
    k0 = (t + 1u) * ${BK}u;
    if (t + 1u < nk) {
      ${load(opA)}
      ${load(opB)}
    }
    for (var kk = 0u; kk < ${BK}u; kk++) {
      ${inner.join('\n      ')}
    }
    workgroupBarrier();
  }`}
  ${epi.join('\n  ')}
}`);
  return L.join('\n');
}
