/**
 * Tiled fp32 GEMM in WGSL: C[z] = alpha·op(A[z])·op(B[z]) (+ bias[n]) (+ s·U·V).
 *
 * Each workgroup computes a BM×BN tile of C; each thread a TM×TN block held
 * in registers as vec4 rows, fed from k-major shared tiles so that one
 * shared-memory read of a vec4 of A and a vec4 of B feeds 16 FMAs. The next
 * K-slice is fetched into registers while the current one is multiplied.
 * tfjs's own MatMulPackedProgram (4×4 per thread, 32×32 tiles) reached under
 * a fifth of the H200's fp32 peak (bench/NOTES.md, entry 1).
 *
 * The epilogue adds what LoRA needs without another pass over C:
 *   bias[n], and a rank-r product s·U[M,r]·V (V as [N,r] or [r,N]), so that
 *   y = xW + b + s·(xAᵀ)Bᵀ and dx = dyWᵀ + s·(dyB)A are each one launch.
 * Batches map B's batch index through (z / bH)·bHkv + (z % bH) / bRep so
 * grouped-query attention reads each kv head for its rep query heads
 * without materialising the repeat.
 *
 * Only the tiles the rule below picks live here; the benchmark's other
 * shapes and kernel variants (double-buffered, K-fastest loads, 32-deep
 * K-slices) are in bench/gemm-variants.ts, which registers them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from '../flags.js';
import { dispatch, webgpuBackend, type UniformField } from './dispatch.js';
import { each4 } from './rows.js';
import { reduceSplits, splitChunk, splitCount } from './splitk.js';
import { THIN_MAX, thinGemm } from './thin.js';
import { actFunctions, type ActKind } from './activation.js';

/** What the kernel source depends on besides the tile. */
export interface GemmBodyOptions {
  transA: boolean; transB: boolean;
  /** vec4 global access of A, B, C (every row and batch start 16-byte aligned) */
  vecA: boolean; vecB: boolean; vecC: boolean;
  bias: boolean;
  /** the low-rank epilogue's V layout: 'T' [N, r], 'N' [r, N], '' none */
  lowRank: '' | 'T' | 'N';
  /** A is an activation's input: every loaded element of A goes through act (activation.ts act4_) first */
  actA?: ActKind;
  /** the epilogue multiplies by act'(H[row, col]) (dact4_), H laid out like C with ldc = N: d(pre) = d(post)·act'(pre) */
  dAct?: ActKind;
  /**
   * split-K partial (splitk.ts): workgroup z takes K-slice [z·P.kc, min(K, (z+1)·P.kc))
   * and writes alpha·(its partial product) to C + z·P.sC; bias and low-rank wait for the reduce
   */
  split?: boolean;
  /**
   * a causal attention product (attention.ts): 'skipAbove' leaves out the workgroups whose whole tile lies above the
   * diagonal (column > row everywhere: masked scores, never read); 'kBelow' ends each workgroup's K loop at its last
   * row (dQ = dS·K: key j ≤ query i), 'kAbove' starts it at its first row (dK = dSᵀ·Q, dV = Pᵀ·dO: query i ≥ key j).
   * The terms left out are zeros, so each output is the same sum in the same order.
   */
  causal?: Causal;
}

export type Causal = 'skipAbove' | 'kBelow' | 'kAbove';

export interface GemmTile {
  BM: number; BN: number; BK: number; TM: 4 | 8 | 12 | 16; TN: 4 | 8 | 12 | 16;
  /** a staging of the benchmark's own (bench/gemm-variants.ts), in place of the library's (layoutOf); its name joins the pipeline key */
  variant?: { name: string; layout: GemmLayout };
}

const BIG: GemmTile = { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 };
const MID: GemmTile = { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 };
const SMALL: GemmTile = { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 };
/** 256 threads of 8 × 16 outputs, 24 KB single-buffered, so it can also be a split-K partial (widePlan) */
const WIDE: GemmTile = { BM: 128, BN: 256, BK: 16, TM: 8, TN: 16 };
/** 128 × 128 with 32-deep K-slices: half the barriers a K, 32 KB single-buffered (widePlan) */
const DEEP: GemmTile = { BM: 128, BN: 128, BK: 32, TM: 8, TN: 8 };
/**
 * the same with 32-deep K-slices: half the barriers a K, 48 KB (above WebGPU's guaranteed 32 KB; Dawn grants it on the
 * H100). On the H100 it ran GPT-2 small's LM-head forward (unsplit) in 4.34 ms against 4.75 and each split product
 * 1% slower (bench/NOTES.md "37, measured"), so the wide plan takes it for unsplit products where the device allows
 */
const WIDE32: GemmTile = { BM: 128, BN: 256, BK: 32, TM: 8, TN: 16 };
/**
 * 128 × 192, 256 threads of 8 × 12 (SHARELORA_GEMM_PLAN=fill, entry 39): GPT-2 small's 2,048-row products make
 * 16 × 16 = 256 tiles at N = 3,072 (97% of two rounds of 132 SMs, unsplit, where 128 × 256 needs two K-slices and a
 * reduce) and 16 × 4 = 64 at N = 768 (97% of a round over two slices, where 128 × 256 needs eight)
 */
const W192: GemmTile = { BM: 128, BN: 192, BK: 16, TM: 8, TN: 12 };
/** the same 32-deep: 40 KB, where the device grants it (wideTile) */
const W192K32: GemmTile = { BM: 128, BN: 192, BK: 32, TM: 8, TN: 12 };
const TILES = new Map<string, GemmTile>([['128x128', BIG], ['64x64t4', MID], ['32x32', SMALL], ['128x256', WIDE], ['128x256k32', WIDE32], ['128x128k32', DEEP], ['128x192', W192], ['128x192k32', W192K32]]);

/**
 * The wide plan's 128 × 256 for S K-slices: SHARELORA_GEMM_WIDE_BK=auto (default) is 32-deep where the product is
 * unsplit and the device allows 48 KB of workgroup memory, else 16-deep; 16 or 32 force one.
 */
function wideTile(S: number, workgroupBytes: number, narrow = false): GemmTile {
  const [t16, t32] = narrow ? [W192, W192K32] : [WIDE, WIDE32];
  const bk = flags.gemmWideBK;
  if (bk === '16') return t16;
  if (bk === '32') return t32;
  return S === 1 && workgroupBytes >= gemmSharedBytes(t32, false) ? t32 : t16;
}

/** Adds a tile that SHARELORA_GEMM_TILE, the tile attribute of ShareLoraMatMul and a tile rule can name (the benchmark's). */
export function registerTile(name: string, tile: GemmTile): void {
  const had = TILES.get(name);
  if (had && had !== tile) throw new Error(`GEMM tile "${name}" is already registered as another tile`);
  TILES.set(name, tile);
}

export function tileNames(): string[] {
  return [...TILES.keys()];
}

/** `source` says where the name came from, for the error. */
export function tileNamed(name: string, source: string): GemmTile {
  const t = TILES.get(name);
  if (!t) throw new Error(`${source} must be one of ${tileNames().join(', ')} (bench/gemm-variants.ts registers more); got ${JSON.stringify(name)}`);
  return t;
}

export function nameOfTile(tile: GemmTile): string | undefined {
  for (const [name, t] of TILES) if (t === tile) return name;
  return undefined;
}

/** Replaces the default choice (`chosen`) with another; the benchmark A/Bs tile rules inside a whole step with this. */
export type TileRule = (M: number, N: number, batch: number, K: number, chosen: GemmTile) => GemmTile;
let tileRule: TileRule | undefined;

export function setTileRule(rule: TileRule | undefined): void {
  tileRule = rule;
}

/** A product's kernel: the tile and its K-slices (1: unsplit). */
export interface GemmPlan { t: GemmTile; S: number }

/**
 * The benchmark's A/B of other kernels inside a whole step (bench/gemm-variants.ts): called with the library's plan
 * for every product not given a tile or split by its caller;
 * `canSplit` is false for the batched, strided or written-into products, which must stay unsplit. undefined: the
 * library's plan.
 */
export type PlanOverride = (M: number, N: number, K: number, plan: GemmPlan, canSplit: boolean) => GemmPlan | undefined;
let planOverride: PlanOverride | undefined;

export function setPlanOverride(f: PlanOverride | undefined): void {
  planOverride = f;
}

export function chooseTile(M: number, N: number, batch: number, K = 0): GemmTile {
  const forced = flags.gemmTile;
  if (forced) return tileNamed(forced, 'SHARELORA_GEMM_TILE');
  const t = defaultTile(M, N, batch, K);
  return tileRule ? tileRule(M, N, batch, K, t) : t;
}

function defaultTile(M: number, N: number, batch: number, K: number): GemmTile {
  const SMS = flags.gpuSms;
  const tiles = (t: GemmTile) => Math.ceil(M / t.BM) * Math.ceil(N / t.BN) * batch;
  // From the H200 sweep (bench/NOTES.md, entry 1): 128×128 wins wherever it
  // gives about a wave of workgroups, unless K is long (the LM head's dX) or
  // a side is at most 64 (half of each 128-tile would be padding).
  // SHARELORA_GEMM_RULE=waves2: the H100 sweep of entry 21 had 64×64 ahead of 128×128 on every product where
  // 128×128 made under two waves (GPT-2 small's N = 768); opt-in until a whole step shows it
  if (flags.gemmRule === 'waves2' && M > 64 && N > 64 && tiles(BIG) < 2 * SMS && K <= 4096) return tiles(MID) >= SMS ? MID : SMALL;
  // (where even 64×64 makes under a wave, the small tile below fills more of the GPU than either)
  if (flags.gemmRule === 'efficiency' && M > 64 && N > 64 && K <= 4096 && tiles(MID) >= SMS) return efficientTile(M, N, batch, K, tiles);
  if (M > 64 && N > 64 && (tiles(BIG) >= 2 * SMS || (tiles(BIG) >= 0.7 * SMS && K <= 4096))) return BIG;
  if (tiles(MID) >= SMS) return MID;
  return SMALL;
}

/**
 * 64×64's rate against 128×128's where both fill their waves: the session-12 H100 sweep's c_fc forward (384 and
 * 1,536 tiles, both 97% of their last wave) ran 26.2 against 28.3 TFLOP/s (bench/NOTES.md entry 31).
 */
const MID_RATE = 0.93;
/** what a split's reduce pass costs against its gain: splitCount asks for 15% (splitk.ts) */
const SPLIT_PENALTY = 1.15;

/**
 * SHARELORA_GEMM_RULE=efficiency: each candidate's expected rate is its steady rate times the fill of its waves
 * (a round holds SMs × SHARELORA_GEMM_OCCUPANCY workgroups; the last round's empty slots idle for a whole K loop):
 * 128×128 unsplit, 128×128 over split-K's slices (one product only, with the reduce's cost), 64×64. On the
 * session-12 sweep's GPT-2 products this picks each row's faster of the two tiles (entry 31).
 */
function efficientTile(M: number, N: number, batch: number, K: number, tiles: (t: GemmTile) => number): GemmTile {
  const slots = flags.gpuSms * flags.gemmOccupancy;
  const fill = (n: number) => n / (Math.ceil(n / slots) * slots);
  const big = tiles(BIG);
  let bigRate = fill(big);
  if (batch === 1) {
    const S = splitCount(M, N, K, big, slots);
    if (S > 1) bigRate = Math.max(bigRate, (big / slots) / (Math.ceil((big * S) / slots) / S) / SPLIT_PENALTY);
  }
  const midRate = fill(tiles(MID)) * MID_RATE;
  return midRate > bigRate ? MID : BIG;
}

export interface GemmArgs {
  a: tf.TensorInfo; b: tf.TensorInfo;
  M: number; N: number; K: number;
  transA: boolean; transB: boolean;
  batch?: number;
  /** batch strides in elements (0 broadcasts) */
  strideA?: number; strideB?: number;
  /** grouped-query mapping for B's batch index: z -> (z / bH)·bHkv + (z % bH) / bRep */
  bH?: number; bHkv?: number; bRep?: number;
  /**
   * Strided (token-major) operands, for attention over [B, T, heads·D]
   * projections without transposes: batch z = (outer, head) with
   * offset = (z / xH)·sX + (z % xH)·hsX + oX and row stride ldX. For B,
   * xH is bH and the head index is (z % bH) / bRep.
   */
  aH?: number; hsA?: number; oA?: number; lda?: number;
  hsB?: number; oB?: number; ldb?: number;
  cH?: number; sC?: number; hsC?: number; oC?: number; ldc?: number;
  /** B's rows hold zeros from N up to ldb (a padded copy, frozen.ts): vec4 loads may run past N */
  padB?: boolean;
  /** write into this existing tensor (its shape must hold every addressed element) instead of a new one */
  into?: tf.TensorInfo;
  alpha?: number;
  bias?: tf.TensorInfo;
  /** + s·U·V with U [M, r] and V [N, r] (vT) or [r, N] */
  lowRank?: { u: tf.TensorInfo; v: tf.TensorInfo; r: number; s: number; vT: boolean };
  /** C = alpha·act(A)·B: the activation applied to A as it is loaded (ops.geluLinear's forward and weight gradient) */
  actA?: ActKind;
  /** C ⊙= act'(h), h [M, N] (ops.geluLinear's input gradient); plain C layout only */
  dAct?: { h: tf.TensorInfo; kind: ActKind };
  outShape: number[];
  tile?: GemmTile;
  /** K-slices (splitk.ts); unset: splitCount decides for the tile rule's products, 1 never splits */
  splitK?: number;
  /** a causal attention product's structure (GemmBodyOptions.causal); such a product is never split */
  causal?: Causal;
}

/**
 * The staging of one of the library's tiles: SHARELORA_GEMM_UNROLL (on by default) unrolls the K loop (un) and
 * double-buffers 128×128 (its 32 KB of shared memory fit the adapter limits our device asks for), except
 * in a split-K partial, which stays single-buffered. The 2026-12-06 sweep on an H100 (bench/NOTES.md entry
 * 21) had both ahead on most GPT-2 products, but not all, and whole steps were 0.1–0.6 ms faster with them
 * (session 12, "22 and 23, measured"); SHARELORA_GEMM_UNROLL=0 keeps the WGSL loop. A benchmark's own variant keeps its body.
 */
function layoutOf(t: GemmTile, split: boolean): GemmLayout & { name: string } {
  if (t.variant || !flags.gemmUnroll) return { name: '' };
  return t === BIG && !split ? { db: true, un: true, name: 'dbun' } : { un: true, name: 'un' };
}

/** var<workgroup> bytes of a tile's kernel: its A and B slices, twice where double-buffered */
export function gemmSharedBytes(t: GemmTile, split: boolean): number {
  const db = !!(t.variant ? t.variant.layout : layoutOf(t, split)).db;
  return (db ? 2 : 1) * t.BK * (t.BM + t.BN) * 4;
}

function bodyOf(t: GemmTile, o: GemmBodyOptions): string {
  return gemmBody({ ...t, ...(t.variant ? t.variant.layout : layoutOf(t, !!o.split)) }, o);
}

/**
 * The K-slices (and the tile they run on) for one plain product whose tile the rule chose as `t`: split where the
 * rule chose 128×128, or chose 64×64 only because K is long for ~a wave of 128×128 tiles (the LM head's dX: 6.2 ms
 * on 64×64, 32.5 on unsplit 128×128, run 6). Split, 128×128 reads the long operand half as often (once per 128
 * columns instead of 64) and does 8×8 FMAs per thread per shared load instead of 4×4. And where it chose 32×32
 * because even 64×64 tiles would not fill the GPU, over a long K: the weight gradients of full training (xᵀ·dy
 * over the batch's tokens), which ran unsplit on 32×32 at 64 × 256 tokens (the pretraining census, bench/NOTES.md
 * entry 25). A forced tile or tile rule is left unsplit.
 */
export function splitChoice(M: number, N: number, K: number, t: GemmTile): { t: GemmTile; S: number } {
  const bigTiles = Math.ceil(M / BIG.BM) * Math.ceil(N / BIG.BN);
  const longK = t === MID && K > 4096 && M > 64 && N > 64 && bigTiles >= 0.7 * flags.gpuSms;
  const few = t === SMALL && K >= 4096 && M > 64 && N > 64;
  if (!(t === BIG || longK || few) || flags.gemmTile || tileRule) return { t, S: 1 };
  // one round of the wave model is as many 128×128 workgroups as the GPU runs at once
  const S = splitCount(M, N, K, bigTiles, flags.gpuSms * flags.gemmOccupancy, { few });
  return { t: S > 1 ? BIG : t, S };
}

/**
 * SHARELORA_GEMM_PLAN=wide (the default since session 19): 128 × 256 over the fewest K-slices (none, 2, 3, 4, 6, 8;
 * at least 256 of K each) that fill 90% of the last round of one workgroup an SM; where none do, the 32-deep
 * 128 × 128 in place of the unsplit 128 × 128; every other plan as the tile rule and split-K made it. In the
 * session-18 sweep 128 × 256 ran the LM head's forward at 35 TFLOP/s against 27 and lost the block products only to
 * their fill; in session 19 (one H100, bench/NOTES.md "34, measured") GPT-2 small's step went from 55.0 / 51.9 ms
 * (LoRA / ShareA) to 48.6 / 47.0, three runs a side, and the notebook-scale step moved by less than its noise.
 * `canSplit` is false for strided or written-into products, which stay unsplit; batched ones (attention's) keep
 * their tile but for the 32-deep form, as measured (their 128 × 256 fill was never); K > 4096 (an LM head's dX)
 * keeps split-K's own plan. An unsplit 128 × 256 is 32-deep where `workgroupBytes` (the device's limit) allows.
 */
/**
 * The K-slice counts the wide and fill plans try, fewest first: none, 2, 3, 4, 6, 8, each at least 256 of K (1 alone
 * where the product cannot be split). (5 slices, and a 0.8 fill that put the c_attn forward onto 3, were measured no
 * better and 1.6 ms worse: entry 37.)
 */
function sliceCounts(K: number, canSplit: boolean): number[] {
  return canSplit ? [1, 2, 3, 4, 6, 8].filter((S) => S === 1 || K / S >= 256) : [1];
}

export function widePlan(M: number, N: number, K: number, batch: number, plan: GemmPlan, canSplit: boolean, sms = flags.gpuSms, workgroupBytes = 32768, fill = flags.gemmPlan === 'fill'): GemmPlan {
  if (batch === 1 && M > 64 && N > 128 && K <= 4096) {
    if (fill) {
      const p = fillPlan(M, N, K, canSplit, sms, workgroupBytes);
      if (p) return p;
    }
    const tiles = Math.ceil(M / WIDE.BM) * Math.ceil(N / WIDE.BN);
    for (const S of sliceCounts(K, canSplit)) {
      const n = tiles * S;
      if (n / (Math.ceil(n / sms) * sms) >= 0.9) return { t: wideTile(S, workgroupBytes), S };
    }
  }
  return plan.t === BIG && plan.S === 1 ? { t: DEEP, S: 1 } : plan;
}

/** FMAs an SM does in a µs on 128 × 256 (the LM head's forward, 34 TFLOP/s on an H100 in session 20's profile) */
const FMA_PER_SM_US = 34e12 / 2 / 132 / 1e6;
/**
 * each tile's rate per FMA against 16-deep 128 × 256: the 32-deep one ran the LM head's forward 4.75 → 4.34 ms
 * (entry 37); 128 × 192's from session 21's H100 profile (bench/NOTES.md "39-41, measured"): 32-deep and unsplit, the
 * c_fc forward in 0.292 ms a layer (two rounds: 1.0), 16-deep over 2 slices, the c_fc dX in 0.349 (0.88)
 */
const TILE_RATE = new Map<GemmTile, number>([[WIDE, 1], [WIDE32, 1.09], [W192, 0.88], [W192K32, 1.0]]);
/** a split's reduce: S partials written and read and the output written at ~2.5 TB/s, plus a dispatch boundary */
const REDUCE_BYTES_PER_US = 2.5e6, REDUCE_FIXED_US = 4;

/**
 * SHARELORA_GEMM_PLAN=fill (opt-in, bench/NOTES.md entry 39): 128 × 256 or 128 × 192 over 1, 2, 3, 4, 6 or 8 K-slices
 * (≥ 256 of K each), whichever the wave model times fastest: rounds of one workgroup an SM × a workgroup's FMAs at its
 * tile's rate, plus the reduce's traffic where split; fewer slices on ties. Padding counts (a 256-wide product on
 * 128 × 192 is two tiles, a third of it empty), which the wide plan's fill test does not see. On session 20's profile
 * it reproduces the c_fc dX (128 × 256 over 8: 339 µs modelled, 336 measured). On GPT-2 small it moves c_fc forward
 * and mlp.c_proj dX onto unsplit 128 × 192 (−1.05 ms a step in session 21's profile), c_attn dX, c_attn forward and
 * attn.c_proj onto 128 × 192 over 2. undefined where the best choice makes under half a round of workgroups (the wide
 * plan decides).
 */
export function fillPlan(M: number, N: number, K: number, canSplit: boolean, sms: number, workgroupBytes: number): GemmPlan | undefined {
  let best: GemmPlan | undefined, bestUs = Infinity, bestN = 0;
  for (const S of sliceCounts(K, canSplit)) {
    for (const narrow of [false, true]) {
      const t = wideTile(S, workgroupBytes, narrow);
      const n = Math.ceil(M / t.BM) * Math.ceil(N / t.BN) * S;
      const us = Math.ceil(n / sms) * (t.BM * t.BN * Math.ceil(K / S)) / (FMA_PER_SM_US * TILE_RATE.get(t)!)
        + (S > 1 ? ((2 * S + 1) * M * N * 4) / REDUCE_BYTES_PER_US + REDUCE_FIXED_US : 0);
      if (us < bestUs) { best = { t, S }; bestUs = us; bestN = n; }
    }
  }
  return bestN >= sms / 2 ? best : undefined;
}

/**
 * The planned tile, or where its shared memory exceeds the device's `workgroupBytes` (WebGPU guarantees 16 KiB; the
 * plans assume the 32-48 KiB of desktop GPUs, and Dawn's null device, on which bench/NOTES.md times the host, grants
 * only the 16), the largest library tile that fits: 128 × 128 (16 KiB single-buffered as a split-K partial, 32
 * double-buffered unsplit), 64 × 64, 32 × 32.
 */
export function fitWorkgroupMemory(t: GemmTile, split: boolean, workgroupBytes: number): GemmTile {
  if (gemmSharedBytes(t, split) <= workgroupBytes) return t;
  return [BIG, MID, SMALL].find((c) => gemmSharedBytes(c, split) <= workgroupBytes) ?? t;
}

export function gemm(g: GemmArgs): tf.TensorInfo {
  const batch = g.batch ?? 1;
  if (g.dAct && (batch !== 1 || g.into || g.ldc !== undefined || g.cH !== undefined)) throw new Error('gemm: dAct needs a plain [M, N] output');
  const plain = batch === 1 && !g.bias && !g.lowRank && !g.into && g.aH === undefined && g.cH === undefined && g.hsB === undefined
    && g.lda === undefined && g.ldb === undefined && g.ldc === undefined && !g.tile && !g.actA && !g.dAct;
  if (plain && Math.min(g.M, g.N) <= THIN_MAX && Math.max(g.M, g.N) >= 64 && g.K >= 64) {
    return thinGemm({ a: g.a, b: g.b, M: g.M, N: g.N, K: g.K, transA: g.transA, transB: g.transB, alpha: g.alpha ?? 1, outShape: g.outShape });
  }
  // split-K only for one plain product: batched, strided or written-into GEMMs keep their layouts
  const simple = batch === 1 && !g.causal && !g.into && g.aH === undefined && g.cH === undefined && g.hsB === undefined
    && g.lda === undefined && (g.ldb === undefined || g.padB) && g.ldc === undefined;
  let t = g.tile ?? chooseTile(g.M, g.N, batch, g.K);
  let S = simple ? g.splitK ?? 1 : 1;
  if (simple && g.splitK === undefined && !g.tile) ({ t, S } = splitChoice(g.M, g.N, g.K, t));
  // a forced tile or tile rule (the benchmark's A/Bs) keeps its own plan, as in splitChoice
  const limits = webgpuBackend().device.limits;
  if (flags.gemmPlan !== 'rule' && !g.tile && g.splitK === undefined && !flags.gemmTile && !tileRule) {
    ({ t, S } = widePlan(g.M, g.N, g.K, batch, { t, S }, !!simple, flags.gpuSms, limits.maxComputeWorkgroupStorageSize));
  }
  let overridden = false;
  if (planOverride && !g.tile && g.splitK === undefined) {
    const p = planOverride(g.M, g.N, g.K, { t, S }, !!simple);
    if (p && p.S > 1 && !simple) throw new Error(`a plan override split a product that cannot be split (${g.M} x ${g.N} x ${g.K})`);
    if (p) ({ t, S } = p);
    overridden = !!p;
  }
  // the [S, M, N] partials are one binding: no more slices than the device lets one buffer bind (the session-21 sweep's
  // 8-slice LM-head forward asked for 3.3 GB against the H100's 2 GB, and its bind group was silently invalid)
  while (S > 1 && S * g.M * g.N * 4 > limits.maxStorageBufferBindingSize) S--;
  // a tile a caller, SHARELORA_GEMM_TILE or the benchmark's tile rule or plan override named is kept (dispatch names
  // the limit it exceeds: a benchmark must not time another kernel than it asked for); a planned one fits
  if (!g.tile && !flags.gemmTile && !tileRule && !overridden) t = fitWorkgroupMemory(t, S > 1, limits.maxComputeWorkgroupStorageSize);
  if (S > 1) return splitGemm(g, t, S);
  const lda = g.lda ?? (g.transA ? g.M : g.K);
  const ldb = g.ldb ?? (g.transB ? g.K : g.N);
  const ldc = g.ldc ?? g.N;
  const sA = g.strideA ?? g.M * g.K, hsA = g.hsA ?? 0, oA = g.oA ?? 0;
  // B's per-batch stride, split into the outer (z / bH) and kv-head parts
  const sB1 = g.strideB ?? g.K * g.N;
  const hsB = g.hsB ?? sB1, sB = g.hsB === undefined ? sB1 * (g.bHkv ?? 1) : sB1, oB = g.oB ?? 0;
  const sC = g.sC ?? g.M * g.N, hsC = g.hsC ?? 0, oC = g.oC ?? 0;
  const al = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  // vec4 global access needs every row start (and batch start) 16-byte aligned
  const vecA = al(lda, sA, hsA, oA, g.transA ? g.M : g.K);
  const vecB = al(ldb, sB, hsB, oB, g.transB ? g.K : g.padB ? ldb : g.N);
  const vecC = al(ldc, sC, hsC, oC, g.N);
  const lr = g.lowRank;
  const key = `gemm_${t.BM}x${t.BN}x${t.BK}_${t.TM}x${t.TN}${t.variant?.name ?? layoutOf(t, false).name}_${g.transA ? 'T' : 'N'}${g.transB ? 'T' : 'N'}_${+vecA}${+vecB}${+vecC}_${g.bias ? 'b' : ''}${lr ? (lr.vT ? 'lrT' : 'lrN') : ''}${g.causal ? `_${g.causal}` : ''}${g.actA ? `_a${g.actA}` : ''}${g.dAct ? `_d${g.dAct.kind}` : ''}`;
  const uniforms: UniformField[] = [
    ['M', 'u32', g.M], ['N', 'u32', g.N], ['K', 'u32', g.K],
    ['lda', 'u32', lda], ['ldb', 'u32', ldb], ['ldc', 'u32', ldc],
    ['sA', 'u32', sA], ['aH', 'u32', g.aH ?? 1], ['hsA', 'u32', hsA], ['oA', 'u32', oA],
    ['sB', 'u32', sB], ['bH', 'u32', g.bH ?? 1], ['bRep', 'u32', g.bRep ?? 1], ['hsB', 'u32', hsB], ['oB', 'u32', oB],
    ['sC', 'u32', sC], ['cH', 'u32', g.cH ?? 1], ['hsC', 'u32', hsC], ['oC', 'u32', oC],
    ['alpha', 'f32', g.alpha ?? 1],
  ];
  const inputs: tf.TensorInfo[] = [g.a, g.b];
  const inDecl: Array<{ name: string; type?: string }> = [{ name: 'A', type: vecA ? 'vec4<f32>' : 'f32' }, { name: 'B', type: vecB ? 'vec4<f32>' : 'f32' }];
  if (g.bias) { inputs.push(g.bias); inDecl.push({ name: 'bias' }); }
  if (lr) {
    inputs.push(lr.u, lr.v);
    inDecl.push({ name: 'U' }, { name: 'V' });
    uniforms.push(['R', 'u32', lr.r], ['lrs', 'f32', lr.s]);
  }
  if (g.dAct) { inputs.push(g.dAct.h); inDecl.push({ name: 'H', type: vecC ? 'vec4<f32>' : 'f32' }); }
  const [out] = dispatch(
    { key, workgroupBytes: gemmSharedBytes(t, false), outputs: [{ name: 'C', type: vecC ? 'vec4<f32>' : 'f32' }], inputs: inDecl, body: () => bodyOf(t, { transA: g.transA, transB: g.transB, vecA, vecB, vecC, bias: !!g.bias, lowRank: lr ? (lr.vT ? 'T' : 'N') : '', causal: g.causal, actA: g.actA, dAct: g.dAct?.kind }) },
    inputs, [g.into ?? { shape: g.outShape }], uniforms,
    [Math.ceil(g.N / t.BN), Math.ceil(g.M / t.BM), batch],
  );
  return out;
}

/** One plain product as S K-slices into an [S, M, N] scratch, then the reduce with the epilogue (splitk.ts). */
function splitGemm(g: GemmArgs, t: GemmTile, S: number): tf.TensorInfo {
  const kc = splitChunk(g.K, S);
  const splits = Math.ceil(g.K / kc);
  const lda = g.transA ? g.M : g.K, ldb = g.ldb ?? (g.transB ? g.K : g.N);
  const vecA = lda % 4 === 0, vecB = ldb % 4 === 0 && (g.transB || g.padB || g.N % 4 === 0), vecC = g.N % 4 === 0;
  const key = `gemm_${t.BM}x${t.BN}x${t.BK}_${t.TM}x${t.TN}${t.variant?.name ?? layoutOf(t, true).name}_${g.transA ? 'T' : 'N'}${g.transB ? 'T' : 'N'}_${+vecA}${+vecB}${+vecC}_sk${g.actA ? `_a${g.actA}` : ''}`;
  const uniforms: UniformField[] = [
    ['M', 'u32', g.M], ['N', 'u32', g.N], ['K', 'u32', g.K],
    ['lda', 'u32', lda], ['ldb', 'u32', ldb], ['ldc', 'u32', g.N],
    ['sA', 'u32', 0], ['aH', 'u32', 1], ['hsA', 'u32', 0], ['oA', 'u32', 0],
    ['sB', 'u32', 0], ['bH', 'u32', 1], ['bRep', 'u32', 1], ['hsB', 'u32', 0], ['oB', 'u32', 0],
    ['sC', 'u32', g.M * g.N], ['cH', 'u32', 1], ['hsC', 'u32', 0], ['oC', 'u32', 0],
    ['alpha', 'f32', g.alpha ?? 1], ['kc', 'u32', kc],
  ];
  const [partials] = dispatch(
    {
      key, workgroupBytes: gemmSharedBytes(t, true), outputs: [{ name: 'C', type: vecC ? 'vec4<f32>' : 'f32' }],
      inputs: [{ name: 'A', type: vecA ? 'vec4<f32>' : 'f32' }, { name: 'B', type: vecB ? 'vec4<f32>' : 'f32' }],
      body: () => bodyOf(t, { transA: g.transA, transB: g.transB, vecA, vecB, vecC, bias: false, lowRank: '', split: true, actA: g.actA }),
    },
    [g.a, g.b], [{ shape: [splits, g.M, g.N] }], uniforms,
    [Math.ceil(g.N / t.BN), Math.ceil(g.M / t.BM), splits],
  );
  const out = reduceSplits({ partials, S: splits, M: g.M, N: g.N, bias: g.bias, lowRank: g.lowRank, dAct: g.dAct, outShape: g.outShape });
  tf.backend().disposeData(partials.dataId);
  return out;
}

/**
 * How a kernel stages its K-slices. The library's tiles take theirs from
 * layoutOf; the benchmark's variants (bench/gemm-variants.ts) name their own
 * and run through this same generator, so a fix here reaches them too (bench/NOTES.md).
 */
export interface GemmLayout {
  /** double-buffered shared memory: the next K-slice is stored while the current one is used */
  db?: boolean;
  /** K-fastest loads of K-contiguous operands: coalesced global reads, a conflicted shared store */
  co?: boolean;
  /**
   * the BK steps of a slice written out instead of a WGSL loop, so every shared-memory offset but
   * the thread's own is a constant and the shader compiler can hoist a step's loads above the
   * previous step's FMAs (issue 25 item 1: "a generated, unrolled K loop")
   */
  un?: boolean;
}

/** The kernel source for one tile and one set of operand layouts (epilogue included). */
export function gemmBody(t: GemmTile & GemmLayout, { transA, transB, vecA, vecB, vecC, bias, lowRank, split, causal, actA, dAct }: GemmBodyOptions): string {
  const { BM, BN, BK, TM, TN } = t;
  if (split && (bias || lowRank || t.db)) throw new Error('a split-K partial has no epilogue and is single-buffered');
  if (split && causal) throw new Error('a causal GEMM is never split');
  if (split && dAct) throw new Error('a split-K partial has no epilogue: the reduce applies dAct');
  // the K range of this workgroup: the whole K, its split-K share, or (causal) the part on its side of the diagonal
  const kRange = split ? 'let kBeg = z * P.kc; let kEnd = min(P.K, kBeg + P.kc);'
    : causal === 'kBelow' ? `let kBeg = 0u; let kEnd = min(P.K, m0 + ${BM}u);`
    : causal === 'kAbove' ? 'let kBeg = min(m0, P.K); let kEnd = P.K;' : '';
  // the K bound of the loads and the first K of the slices
  const KE = kRange ? 'kEnd' : 'P.K', K0 = kRange ? 'kBeg + ' : '';
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
  const acts = [...new Set([actA, dAct].filter(Boolean))] as ActKind[];
  if (acts.length > 1) throw new Error('one activation kind a GEMM');
  if (acts.length) L.push(actFunctions(acts[0]));
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
        if (o.vec) s.push(`${r} = vec4<f32>(0.0); if (gr < ${o.R} && gk < ${KE}) { ${r} = ${o.X}[(${o.off} + gr * ${o.ld} + gk) / 4u]; }`);
        else s.push(each4(`${r}[c] = 0.0; if (gr < ${o.R} && gk + c < ${KE}) { ${r}[c] = ${o.X}[${o.off} + gr * ${o.ld} + gk + c]; }`));
      } else {
        // a K-row of the tile is \`rows\` contiguous floats
        s.push(`let kk = v / ${o.rows / 4}u; let rq = v % ${o.rows / 4}u; let gk = k0 + kk; let gr = ${o.r0} + rq * 4u;`);
        if (o.vec) s.push(`${r} = vec4<f32>(0.0); if (gk < ${KE} && gr < ${o.R}) { ${r} = ${o.X}[(${o.off} + gk * ${o.ld} + gr) / 4u]; }`);
        else s.push(each4(`${r}[c] = 0.0; if (gk < ${KE} && gr + c < ${o.R}) { ${r}[c] = ${o.X}[${o.off} + gk * ${o.ld} + gr + c]; }`));
      }
      s.push('}');
    }
    return s.join('\n');
  };
  const store = (o: Operand): string => {
    const s: string[] = [];
    for (let i = 0; i < o.n; i++) {
      // A through the activation (actA) on its way to shared memory, not as it is loaded: applied at the load, it made
      // each K-slice wait for its global loads before the slice before was multiplied (+0.8 ms on GPT-2 small's
      // mlp.c_proj forward, bench/NOTES.md "37, measured"); act(0) = 0, so the zeros past the edges stay zeros
      const act = o.X === 'A' && !!actA;
      const sv = act ? 'sv' : `${o.reg}${i}`;
      s.push(`{ let v = lid + ${i * NT}u;${act ? ` let sv = act4_(${o.reg}${i});` : ''}`);
      if (!o.kContig) s.push(`${o.X}s[${o.w} + v] = ${sv};`); // v = kk*(rows/4) + rq already
      else s.push(`${rowsOf('rr', o.rows)} ${each4(`${o.X}s[${o.w} + (kq * 4u + c) * ${o.rows / 4}u + rr / 4u][rr % 4u] = ${sv}[c];`)}`);
      s.push('}');
    }
    return s.join('\n');
  };
  // accumulators acc_{row}_{j}: row in [0, TM), j in [0, hn): vec4 over 4 columns
  const accDecl: string[] = [];
  for (let r = 0; r < TM; r++) for (let j = 0; j < hn; j++) accDecl.push(`var acc_${r}_${j} = vec4<f32>(0.0);`);
  // one K step of the slice: kk a WGSL loop variable, or (un) a constant
  const step = (kk: string, sfx: string): string[] => {
    const s: string[] = [];
    for (let i = 0; i < hm; i++) s.push(`let a${i}${sfx} = As[sa0 + ${kk} * ${BM / 4}u + ${(i * BM) / hm / 4}u + ty];`);
    for (let j = 0; j < hn; j++) s.push(`let b${j}${sfx} = Bs[sb0 + ${kk} * ${BN / 4}u + ${(j * BN) / hn / 4}u + tx];`);
    for (let i = 0; i < hm; i++) for (let r = 0; r < 4; r++) for (let j = 0; j < hn; j++) {
      s.push(`acc_${i * 4 + r}_${j} = fma(vec4<f32>(a${i}${sfx}[${r}]), b${j}${sfx}, acc_${i * 4 + r}_${j});`);
    }
    return s;
  };
  const kLoop = t.un
    ? Array.from({ length: BK }, (_, kk) => step(`${kk}u`, `_${kk}`).join('\n    ')).join('\n    ')
    : `for (var kk = 0u; kk < ${BK}u; kk++) {\n      ${step('kk', '').join('\n      ')}\n    }`;
  // epilogue per (row r, column group j)
  const epi: string[] = [];
  const rowOf = (i: number, r: number) => `m0 + ${(i * BM) / hm}u + ty * 4u + ${r}u`;
  const colOf = (j: number) => `n0 + ${(j * BN) / hn}u + tx * 4u`;
  if (lowRank) {
    // o = alpha·acc + Σ_q (lrs·U[row, q])·V[q, col], q outermost: each V value of the thread's columns is read once
    // per q rather than once per row (TM times fewer V loads), in the same order of operations per output as a
    // q loop inside each output (alpha first, then q = 0, 1, …), so the results are unchanged
    for (let R = 0; R < TM; R++) for (let j = 0; j < hn; j++) epi.push(`acc_${R}_${j} = acc_${R}_${j} * P.alpha;`);
    for (let i = 0; i < hm; i++) for (let r = 0; r < 4; r++) epi.push(`let urow${i * 4 + r} = min(${rowOf(i, r)}, P.M - 1u) * P.R;`);
    // the thread's V columns, clamped once here rather than on every q
    for (let j = 0; j < hn; j++) for (let c = 0; c < 4; c++) epi.push(`let vcol${j}_${c} = ${lowRank === 'T' ? `min(${colOf(j)} + ${c}u, P.N - 1u) * P.R` : `min(${colOf(j)} + ${c}u, P.N - 1u)`};`);
    epi.push('for (var q = 0u; q < P.R; q++) {');
    for (let j = 0; j < hn; j++) {
      const at = (c: number) => lowRank === 'T' ? `V[vcol${j}_${c} + q]` : `V[q * P.N + vcol${j}_${c}]`;
      epi.push(`let vv${j} = vec4<f32>(${[0, 1, 2, 3].map(at).join(', ')});`);
    }
    for (let R = 0; R < TM; R++) {
      epi.push(`{ let uq = vec4<f32>(U[urow${R} + q] * P.lrs);`);
      for (let j = 0; j < hn; j++) epi.push(`acc_${R}_${j} = fma(uq, vv${j}, acc_${R}_${j});`);
      epi.push('}');
    }
    epi.push('}');
  }
  for (let i = 0; i < hm; i++) for (let r = 0; r < 4; r++) {
    const R = i * 4 + r;
    epi.push(`{ let row = ${rowOf(i, r)};`);
    for (let j = 0; j < hn; j++) {
      epi.push(`{ let col = ${colOf(j)};`);
      epi.push(lowRank ? `var o = acc_${R}_${j};` : `var o = acc_${R}_${j} * P.alpha;`);
      if (bias) epi.push(each4(`o[c] += bias[min(col + c, P.N - 1u)];`));
      if (dAct) {
        // H is C's shape with ldc = N (gemm() checks); rows and columns past the edges are clamped reads, never stored
        epi.push(vecC ? `o = dact4_(H[(min(row, P.M - 1u) * P.N + min(col, P.N - 4u)) / 4u], o);`
          : `{ var hv = vec4<f32>(0.0); ${each4(`hv[c] = H[min(row, P.M - 1u) * P.N + min(col + c, P.N - 1u)];`)} o = dact4_(hv, o); }`);
      }
      epi.push(`if (row < P.M) {`);
      if (vecC) epi.push(`if (col < P.N) { C[(cOff + row * P.ldc + col) / 4u] = o; }`);
      else epi.push(each4(`if (col + c < P.N) { C[cOff + row * P.ldc + col + c] = o[c]; }`));
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
  let cOff = (z / P.cH) * P.sC + (z % P.cH) * P.hsC + P.oC;${causal === 'skipAbove' ? `
  // every column of this tile is past every row of it: masked scores, which nothing reads (the whole workgroup returns)
  if (n0 >= m0 + ${BM}u) { return; }` : ''}${kRange ? `
  ${kRange}` : ''}
  ${accDecl.join('\n  ')}
  ${regs.join('\n  ')}
  var k0 = ${kRange ? 'kBeg' : '0u'};
  ${load(opA)}
  ${load(opB)}
  let nk = (${kRange ? 'kEnd - kBeg' : 'P.K'} + ${BK - 1}u) / ${BK}u;${t.db ? `
  // slice t is read from buffer t % 2 while slice t + 1 is stored into the other. The store offsets are
  // \`let\`s of the loop counter (a \`var\` assigned in the loop hid their range from Tint, which then clamped
  // every shared-memory store: bench/shader-audit.ts)
  {
    let wa = 0u; let wb = 0u;
    ${store(opA)}
    ${store(opB)}
  }
  workgroupBarrier();
  for (var t = 0u; t < nk; t++) {
    let sa0 = (t % 2u) * ${(BK * BM) / 4}u;
    let sb0 = (t % 2u) * ${(BK * BN) / 4}u;
    k0 = ${K0}(t + 1u) * ${BK}u;
    if (t + 1u < nk) {
      ${load(opA)}
      ${load(opB)}
    }
    ${kLoop}
    if (t + 1u < nk) {
      let wa = ((t + 1u) % 2u) * ${(BK * BM) / 4}u;
      let wb = ((t + 1u) % 2u) * ${(BK * BN) / 4}u;
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
    k0 = ${K0}(t + 1u) * ${BK}u;
    if (t + 1u < nk) {
      ${load(opA)}
      ${load(opB)}
    }
    ${kLoop}
    workgroupBarrier();
  }`}
  ${epi.join('\n  ')}
}`);
  return L.join('\n');
}
