/**
 * Seeded, order-independent splits. Each group key is hashed with the seed and
 * groups are cut in hash order, so a split depends only on (keys, seed,
 * fractions): not on file listing order, not on `limit`, not on Math.random.
 * Grouping keeps near-duplicates (same review text, same Brown file, same
 * WordNet headword) on one side, so validation scores are not inflated by leakage.
 */
import type { SplitName } from './task.js';

export const DEFAULT_SEED = 42;
export const DEFAULT_FRACTIONS: Readonly<Record<SplitName, number>> = { train: 0.8, validation: 0.1, test: 0.1 };
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];

/** murmur3's 32-bit finaliser: spreads nearby inputs over the whole range. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, started from the seed, then fmix32. */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ fmix32(seed + 0x9e3779b9)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** Items in a pseudo-random order fixed by the seed and each item's key (ties broken by key). */
export function seededOrder<T>(items: readonly T[], key: (item: T, index: number) => string, seed: number): T[] {
  const keys = items.map(key);
  const h = new Uint32Array(keys.length);
  keys.forEach((k, i) => (h[i] = hash32(k, seed)));
  const order = Array.from(keys, (_, i) => i);
  order.sort((a, b) => h[a]! - h[b]! || (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  return order.map((i) => items[i]!);
}

/** Integers in a seeded order (for shuffling rows by position without building key strings). */
function seededIndexOrder(indices: readonly number[], seed: number): number[] {
  const s = fmix32(seed ^ 0x5bd1e995);
  return [...indices].sort((a, b) => fmix32(a ^ s) - fmix32(b ^ s) || a - b);
}

export interface SplitOptions<T> {
  seed: number;
  fractions?: Readonly<Record<SplitName, number>>;
  /** Rows with the same group key always land in the same split. Default: the row index. */
  group?: (row: T, index: number) => string;
  /** Groups are cut separately per stratum (usually the label), so class balance carries over. */
  stratum?: (row: T) => string;
}

/**
 * Cut rows into train/validation/test. Counts are per stratum:
 * validation = round(n·f_val), test = round(n·f_test), train = the rest, where n
 * counts groups; a stratum with at least 3 groups gets at least one group in
 * validation and in test, so a rare class is never missing from evaluation.
 * Rows inside each split come in seeded order, so `slice(0, limit)` is a fair sample.
 */
export function splitRows<T>(rows: readonly T[], opts: SplitOptions<T>): Record<SplitName, T[]> {
  const fractions = opts.fractions ?? DEFAULT_FRACTIONS;
  const total = fractions.train + fractions.validation + fractions.test;
  if (Math.abs(total - 1) > 1e-9 || SPLIT_NAMES.some((s) => fractions[s] < 0)) {
    throw new RangeError(`split fractions must be >= 0 and sum to 1, got ${JSON.stringify(fractions)}`);
  }
  const group = opts.group ?? ((_: T, i: number) => String(i));
  const strata = new Map<string, Map<string, number[]>>();
  rows.forEach((row, i) => {
    const s = opts.stratum ? opts.stratum(row) : '';
    const g = group(row, i);
    let groups = strata.get(s);
    if (!groups) strata.set(s, (groups = new Map()));
    const members = groups.get(g);
    if (members) members.push(i);
    else groups.set(g, [i]);
  });
  const out: Record<SplitName, number[]> = { train: [], validation: [], test: [] };
  for (const groups of strata.values()) {
    const keys = seededOrder([...groups.keys()], (k) => k, opts.seed);
    const n = keys.length;
    const atLeastOne = (f: number) => (n >= 3 && f > 0 ? Math.max(1, Math.round(n * f)) : Math.round(n * f));
    const nVal = atLeastOne(fractions.validation);
    const nTest = Math.min(n - nVal, atLeastOne(fractions.test));
    keys.forEach((k, j) => {
      const split: SplitName = j < nVal ? 'validation' : j < nVal + nTest ? 'test' : 'train';
      out[split].push(...groups.get(k)!);
    });
  }
  const result = {} as Record<SplitName, T[]>;
  for (const s of SPLIT_NAMES) {
    result[s] = seededIndexOrder(out[s], opts.seed).map((i) => rows[i]!);
  }
  return result;
}

/** Validate a `limit` option: a non-negative integer, or undefined for all rows. */
export function applyLimit<T>(rows: readonly T[], limit: number | undefined, what: string): T[] {
  if (limit === undefined) return rows.slice();
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`${what}: limit must be a non-negative integer, got ${limit}`);
  return rows.slice(0, limit);
}
