/**
 * The GEMM tiles and kernel variants the benchmark measures beside the
 * library's three (src/backend/webgpu/gemm.ts), none of which the library's
 * tile rule picks (bench/NOTES.md, "GEMM variants" and "K-fastest loads"):
 *   - other tile shapes (128×64, 64×128, 64×64 with 8×8 per thread);
 *   - double-buffered shared memory (`db`): the next K-slice is stored while
 *     the current one is used, one barrier per slice instead of two;
 *   - K-fastest loads of K-contiguous operands (`co`): coalesced global
 *     reads, a 4-way conflicted shared store;
 *   - the K steps of a slice unrolled in the source (`un`), alone and double-buffered (`dbun`);
 *   - 128×256 double-buffered, and an 8-deep slice (session 18, entry 33).
 * (The 32-deep `128x128k32` and single-buffered `128x256` became the library's
 * in session 19: gemm.ts widePlan, bench/NOTES.md "34, measured".)
 * registerGemmVariants() makes them nameable (the sweep's tile attribute,
 * SHARELORA_GEMM_TILE); SHARELORA_GEMM_K32=1 and SHARELORA_GEMM_COALESCED=1
 * also put them into the tile rule, for A/B runs of a whole training step
 * (setPlanOverride in gemm.ts is the hook for A/Bs of whole plans).
 *
 * The kernels themselves come from the library's generator (gemmBody with
 * its `db` / `co` layout options), so the bench measures the library's code.
 */
import { flags } from '../src/backend/flags.js';
import { benchFlags } from './flags.js';
import { registerTile, setTileRule, tileNamed, type GemmTile } from '../src/backend/webgpu/gemm.js';

const dbVariant = { name: 'db', layout: { db: true } };
const coVariant = { name: 'co', layout: { co: true } };
const unVariant = { name: 'un', layout: { un: true } };
const dbunVariant = { name: 'dbun', layout: { db: true, un: true } };

/**
 * session 18 (bench/NOTES.md entry 33, measured): 128 × 256 tiles, 8 × 16 outputs a thread (256 threads), 48 KB
 * double-buffered (the 24 KB single-buffered one is the library's `128x256` since session 19); an 8-deep slice, the
 * cheapest of that session's kernels to compile, which the plan-override test runs. The session's other candidates (128 × 128 with 128 threads of 8 × 16 or 16 × 8,
 * 256 × 128, subgroup-shaped threads, 64 × 128) lost in the sweep or the step and were taken out.
 */
const SESSION18: Record<string, GemmTile> = {
  '128x256t8x16dbun': { BM: 128, BN: 256, BK: 16, TM: 8, TN: 16, variant: dbunVariant },
  '128x128k8dbun': { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, variant: dbunVariant },
};

/**
 * session 20 (entry 37): the wide tile's 32-deep K-slices at a size lavapipe's 32 KB runs (64 × 128, 64 threads of
 * 8 × 16), so CI checks the generator at that depth; the library's own `128x256k32` needs 48 KB and is checked on the
 * GPU machine
 */
const SESSION20: Record<string, GemmTile> = {
  '64x128k32t8x16': { BM: 64, BN: 128, BK: 32, TM: 8, TN: 16, variant: unVariant },
};

/**
 * session 21 (entry 39): 192 × 192, 256 threads of 12 × 12: GPT-2 small's c_attn forward (2,048 × 2,304) is 11 × 12 =
 * 132 such tiles, one round of an H100 or H200 unsplit, low-rank epilogue in the kernel; 144 accumulators a thread
 * (against 128 × 256's 128) may spill, which the sweep shows; and 128 × 192 double-buffered
 */
const SESSION21: Record<string, GemmTile> = {
  '192x192': { BM: 192, BN: 192, BK: 16, TM: 12, TN: 12, variant: unVariant },
  // 128 × 192 double-buffered (40 KB): one barrier a K-slice instead of two, for the products the fill plan leaves unsplit
  '128x192dbun': { BM: 128, BN: 192, BK: 16, TM: 8, TN: 12, variant: dbunVariant },
};

export const VARIANT_TILES: Record<string, GemmTile> = {
  '128x64': { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8 },
  '64x128': { BM: 64, BN: 128, BK: 16, TM: 8, TN: 8 },
  '64x64': { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 },
  '128x128db': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: dbVariant },
  '64x64t4db': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, variant: dbVariant },
  '128x128co': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: coVariant },
  '64x64t4co': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, variant: coVariant },
  '32x32co': { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4, variant: coVariant },
  '128x128un': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: unVariant },
  '128x64un': { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8, variant: unVariant },
  '64x64t4un': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, variant: unVariant },
  '128x128dbun': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, variant: dbunVariant },
  ...SESSION18,
  ...SESSION20,
  ...SESSION21,
};

/** the variants added in session 18 (entry 33), which the lavapipe test checks on one layout only (compile time) */
export const SESSION18_TILES = Object.keys(SESSION18);
export const SESSION20_TILES = Object.keys(SESSION20);
export const SESSION21_TILES = Object.keys(SESSION21);

let registered = false;

/** Registers the variant tiles, and the tile rule SHARELORA_GEMM_K32 / SHARELORA_GEMM_COALESCED ask for. */
export function registerGemmVariants(): void {
  if (registered) return;
  registered = true;
  for (const [name, tile] of Object.entries(VARIANT_TILES)) registerTile(name, tile);
  const k32 = benchFlags.gemmK32, coalesced = benchFlags.gemmCoalesced;
  if (k32 || coalesced) setTileRule((M, N, batch, K, chosen) => coalescedRule(k32 ? k32Rule(M, N, batch, K, chosen) : chosen, coalesced));
}

/** The LM head's forward alone ran 7.3 ms against 10.3 on it (run 6), but the step lost (run 8). */
function k32Rule(M: number, N: number, batch: number, K: number, chosen: GemmTile): GemmTile {
  const SMS = flags.gpuSms;
  const tiles = Math.ceil(M / 128) * Math.ceil(N / 128) * batch;
  return M > 64 && N > 64 && tiles >= 16 * SMS && K <= 4096 ? tileNamed('128x128k32', 'the K32 rule') : chosen;
}

/** The same tile with K-fastest loads, where one is registered (every 16-deep, single-buffered tile the rule picks). */
function coalescedRule(chosen: GemmTile, on: boolean): GemmTile {
  if (!on || chosen.variant || chosen.BK !== 16) return chosen;
  const co = Object.values(VARIANT_TILES).find((t) => t.variant === coVariant && t.BM === chosen.BM && t.BN === chosen.BN && t.TM === chosen.TM && t.TN === chosen.TN);
  return co ?? { ...chosen, variant: coVariant };
}
