/** Shared plumbing for the npm data set loaders: options, in-memory caches, split selection. */
import { table, type ColumnTable } from 'arquero';
import { applyLimit, DEFAULT_SEED, splitRows, type SplitOptions } from './split.js';
import type { SplitName } from './task.js';
import { optionKeys } from '../util/options.js';

export interface LoadOptions {
  /** Default `train`; `all` is every row in the package's own order. */
  split?: SplitName | 'all';
  /** Keep the first `limit` rows of the split (the split is already in seeded random order). */
  limit?: number;
  /** Split seed; default 42. The counts in README.md are for the default. */
  seed?: number;
}

export const LOAD_KEYS = optionKeys<LoadOptions>()(['split', 'limit', 'seed']);

/** Parse once per process: notebooks call loaders again and again. */
export function once<T>(fn: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: fn() }).v;
}

/** Caches the split of a row set per seed. */
export function splitter<T>(rows: () => readonly T[], opts: Omit<SplitOptions<T>, 'seed'>) {
  const cache = new Map<number, Record<SplitName, T[]>>();
  return (seed: number): Record<SplitName, T[]> => {
    let s = cache.get(seed);
    if (!s) cache.set(seed, (s = splitRows(rows(), { ...opts, seed })));
    return s;
  };
}

/**
 * A subset of a cached split (some groups, one part of speech), itself cached
 * per (subset, seed): filtering after splitting means a row's split never
 * depends on which other rows were asked for.
 */
export function subsetSplitter<T>(base: (seed: number) => Record<SplitName, T[]>, keep: (row: T) => boolean) {
  const cache = new Map<number, Record<SplitName, T[]>>();
  return (seed: number): Record<SplitName, T[]> => {
    let s = cache.get(seed);
    if (!s) {
      const b = base(seed);
      cache.set(seed, (s = { train: b.train.filter(keep), validation: b.validation.filter(keep), test: b.test.filter(keep) }));
    }
    return s;
  };
}

/** One subsetSplitter per subset key. */
export function subsetSplitters<T>(base: (seed: number) => Record<SplitName, T[]>) {
  const byKey = new Map<string, (seed: number) => Record<SplitName, T[]>>();
  return (key: string, keep: (row: T) => boolean) => {
    let f = byKey.get(key);
    if (!f) byKey.set(key, (f = subsetSplitter(base, keep)));
    return f;
  };
}

export function selectRows<T>(what: string, all: () => readonly T[], split: (seed: number) => Record<SplitName, T[]>, opts: LoadOptions): T[] {
  const name = opts.split ?? 'train';
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new RangeError(`${what}: seed must be an integer, got ${seed}`);
  if (name !== 'all' && name !== 'train' && name !== 'validation' && name !== 'test') {
    throw new RangeError(`${what}: unknown split "${String(name)}"; expected train, validation, test or all`);
  }
  return applyLimit(name === 'all' ? all() : split(seed)[name], opts.limit, what);
}

/**
 * Key of the first row with the same text: grouping by this short key keeps
 * duplicates together without hashing whole documents again for every seed.
 */
export function duplicateKeys(texts: readonly string[]): string[] {
  const first = new Map<string, number>();
  return texts.map((t, i) => {
    let k = first.get(t);
    if (k === undefined) first.set(t, (k = i));
    return String(k);
  });
}

/** Row objects → arquero columns, in the given column order. */
export function rowsToTable<T extends object>(rows: readonly T[], columns: readonly (keyof T & string)[]): ColumnTable {
  const data: Record<string, unknown[]> = {};
  for (const c of columns) data[c] = rows.map((r) => r[c]);
  return table(data);
}
