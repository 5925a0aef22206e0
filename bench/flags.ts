/**
 * The SHARELORA_* switches only the benchmark reads, out of the library
 * (src/backend/flags.ts holds the library's, and the readers used here, so
 * every value is checked the same way). README.md's switches table lists them.
 */
import { once, onOff, raw } from '../src/backend/flags.js';

const gemmK32 = once(() => onOff('SHARELORA_GEMM_K32', false));
const gemmCoalesced = once(() => onOff('SHARELORA_GEMM_COALESCED', false));
const python = once(() => raw('SHARELORA_PYTHON') ?? 'python3');

export const benchFlags = {
  /** SHARELORA_GEMM_K32=1: the 32-deep K-slice tile for long-K products (gemm-variants.ts). */
  get gemmK32(): boolean { return gemmK32(); },
  /** SHARELORA_GEMM_COALESCED=1: K-fastest loads for every single-buffered tile (gemm-variants.ts). */
  get gemmCoalesced(): boolean { return gemmCoalesced(); },
  /** SHARELORA_PYTHON: the Python with torch, transformers and peft for the PyTorch baseline; default python3. */
  get python(): string { return python(); },
};
