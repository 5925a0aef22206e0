/** Shared plumbing for the npm data set loaders: options, in-memory caches, split selection. */
import { table, type ColumnTable } from 'arquero';
import { applyLimit, DEFAULT_SEED, splitRows, type SplitOptions } from './split.js';
import type { SplitName } from './task.js';

export interface LoadOptions {
  /** Default `train`; `all` is every row in the package's own order. */
  split?: SplitName | 'all';
  /** Keep the first `limit` rows of the split (the split is already in seeded random order). */
  limit?: number;
  /** Split seed; default 42. The counts in README.md are for the default. */
  seed?: number;
}

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

export function selectRows<T>(what: string, all: () => readonly T[], split: (seed: number) => Record<SplitName, T[]>, opts: LoadOptions): T[] {
  const name = opts.split ?? 'train';
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new RangeError(`${what}: seed must be an integer, got ${seed}`);
  if (name !== 'all' && name !== 'train' && name !== 'validation' && name !== 'test') {
    throw new RangeError(`${what}: unknown split "${String(name)}"; expected train, validation, test or all`);
  }
  return applyLimit(name === 'all' ? all() : split(seed)[name], opts.limit, what);
}

/** Row objects → arquero columns, in the given column order. */
export function rowsToTable<T extends object>(rows: readonly T[], columns: readonly (keyof T & string)[]): ColumnTable {
  const data: Record<string, unknown[]> = {};
  for (const c of columns) data[c] = rows.map((r) => r[c]);
  return table(data);
}
