/**
 * Experiment grids: run a function over every combination of some settings
 * and collect one row per run in an arquero table.
 *
 * @example
 *   const results = await runGrid(
 *     { r: [4, 8], share: ['none', 'A', 'B', 'AB'], targets: [['q', 'v'], ['q', 'v', 'o']] },
 *     async ({ r, share, targets }) => {
 *       const adapter = injectShareLoRA(model, { r, share, targets });
 *       ...train...
 *       return { accuracy, params: adapter.trainableParameterCount() };
 *     });
 *   summarizeGrid(results, { by: ['share'], metrics: ['accuracy'] })
 */
import * as aq from 'arquero';
import type { RecipeSpec } from './queue/recipe.js';
import type { GridConfig, GridFunction, GridMetrics, GridOptions, GridSpace } from './grid-types.js';
import { checkOptions, optionKeys, OptionsError } from '../util/options.js';
import { checkSettingNames, describe, gridLabel, gridLogLine, gridRow, gridTable, metricNameProblem } from './grid-rows.js';
import { checkPositiveInt } from './queue/options.js';
import { plainKey, readRuns, RunCache, runKey, type CachedRun } from './run-cache.js';

export { gridLabel };

export type { GridConfig, GridFunction, GridMetrics, GridOptions, GridRunInfo, GridSpace } from './grid-types.js';

interface GridCacheRow extends CachedRun { config: Record<string, unknown>; metrics: Record<string, unknown>; error?: string }

/**
 * Every combination, the last setting varying fastest (like itertools.product).
 * An empty list of values for any setting gives no combinations.
 */
export function gridConfigs<S extends GridSpace>(space: S, filter?: (cfg: GridConfig<S>) => boolean): GridConfig<S>[] {
  const keys = Object.keys(space);
  for (const k of keys) {
    if (!Array.isArray(space[k])) throw new TypeError(`runGrid: setting "${k}" must be an array of values to try, got ${describe(space[k])}; wrap a single value as [value]`);
  }
  let out: Record<string, unknown>[] = [{}];
  for (const k of keys) {
    const next: Record<string, unknown>[] = [];
    for (const partial of out) for (const v of space[k]!) next.push({ ...partial, [k]: v });
    out = next;
  }
  const all = out as GridConfig<S>[];
  return filter ? all.filter(filter) : all;
}

/**
 * Run `fn` once per combination, one after another (training runs should not
 * compete for the same device), and return a table with a column per setting
 * (see gridLabel), a column per metric `fn` returned (a bare number becomes
 * `value`), and `seconds`. `fn` may instead be a recipe module
 * ('recipe.mjs' or { module, export }) exporting `async function run(config, ctx)`;
 * with `queue` set, the runs go to workers on other machines.
 */
export async function runGrid<S extends GridSpace>(
  space: S,
  fn: GridFunction<S> | RecipeSpec,
  opts: GridOptions<S> = {},
): Promise<aq.ColumnTable> {
  checkOptions('runGrid', opts, optionKeys<GridOptions<S>>()(['filter', 'onError', 'log', 'queue', 'name', 'timeoutMs', 'cache', 'key', 'waitSeconds']));
  if (opts.timeoutMs !== undefined) checkPositiveInt('runGrid', 'timeoutMs', opts.timeoutMs);
  checkCacheOptions(opts);
  const keys = Object.keys(space);
  checkSettingNames(keys);
  const configs = gridConfigs(space, opts.filter);
  const log = opts.log === false ? undefined : typeof opts.log === 'function' ? opts.log : (line: string) => console.log(line);
  // Loaded only when asked for: library-only users need neither bullmq nor Redis.
  if (opts.queue !== undefined) return (await import('./queue/client.js')).runQueuedGrid(keys, configs, fn, opts, log);
  const run = typeof fn === 'function' ? fn : await (await import('./queue/local.js')).localRecipe(fn, opts.name, configs);
  // a failed run is not a result: the next call runs it again
  const cache = opts.cache === undefined ? undefined : new RunCache<GridCacheRow>('runGrid', opts.cache, { waitSeconds: opts.waitSeconds, retry: (row) => row.error !== undefined });
  const runKeys = cache ? configs.map((cfg) => runKey({ grid: plainKey('runGrid', 'key', opts.key ?? {}), config: plainKey('runGrid', 'a setting', cfg) })) : [];
  const rows: Record<string, unknown>[] = [];
  for (let index = 0; index < configs.length; index++) {
    const cfg = configs[index]!;
    if (cache && (cache.get(runKeys[index]!) || !cache.claim(runKeys[index]!))) continue;
    const t0 = performance.now();
    let metrics: GridMetrics;
    let error: string | undefined;
    try {
      metrics = await withTimeout(run(cfg, { index, total: configs.length }), opts.timeoutMs);
      const m = typeof metrics === 'number' ? { value: metrics } : metrics;
      if (m !== undefined && m !== null && (typeof m !== 'object' || Array.isArray(m))) throw new TypeError(`runGrid: the run function must return an object of metrics, a number or nothing; got ${describe(m)}`);
      const problem = metricNameProblem(keys, m);
      if (problem) throw new RangeError(`runGrid: ${problem}`);
    } catch (e) {
      if (opts.onError !== 'record' || (e as Error)?.name === 'TrainingInterrupted') throw e;
      error = (e as Error)?.message ?? String(e);
      metrics = undefined;
    }
    const seconds = (performance.now() - t0) / 1000;
    const row = gridRow(keys, cfg, metrics, error, seconds);
    rows[index] = row;
    await cache?.put({ key: runKeys[index]!, config: Object.fromEntries(keys.map((k) => [k, row[k]])), metrics: typeof metrics === 'number' ? { value: metrics } : (metrics ?? {}), seconds, ...(error !== undefined && { error }) });
    log?.(gridLogLine(keys, row, metrics, error, index, configs.length), row);
  }
  if (cache) {
    // read back, and other shards' runs once their rows are in the file
    await cache.waitFor(runKeys, (k) => keys.map((n) => `${n}=${gridLabel(configs[runKeys.indexOf(k)]![n])}`).join(' '));
    runKeys.forEach((k, i) => { if (!rows[i]) { const c = cache.get(k)!; rows[i] = gridRow(keys, configs[i]!, c.metrics as GridMetrics, c.error, c.seconds); } });
  }
  return gridTable(keys, rows);
}

/** one run of a grid and what its results file already holds for it (gridCacheStatus) */
export interface GridCacheEntry<S extends GridSpace> {
  config: GridConfig<S>;
  /** whether runGrid with the same cache and key would read this run back instead of running it */
  cached: boolean;
  /** the cached run's seconds (undefined when not cached) */
  seconds?: number;
}

/**
 * Which runs of a grid (after `filter`) its results file already holds, as
 * runGrid with the same `cache` and `key` would find them, without running
 * anything: to estimate what a call will train, or what a change of design
 * costs. A failed run (an `error` row) counts as not cached, since runGrid
 * runs it again. Without `cache` nothing is cached.
 */
export function gridCacheStatus<S extends GridSpace>(space: S, opts: Pick<GridOptions<S>, 'filter' | 'cache' | 'key'> = {}): GridCacheEntry<S>[] {
  checkOptions('gridCacheStatus', opts, ['filter', 'cache', 'key']);
  checkCacheOptions(opts);
  checkSettingNames(Object.keys(space));
  const configs = gridConfigs(space, opts.filter);
  const { runs } = readRuns<GridCacheRow>(opts.cache);
  return configs.map((cfg) => {
    const row = runs.get(runKey({ grid: plainKey('gridCacheStatus', 'key', opts.key ?? {}), config: plainKey('gridCacheStatus', 'a setting', cfg) }))?.row;
    return row && row.error === undefined ? { config: cfg, cached: true, seconds: row.seconds } : { config: cfg, cached: false };
  });
}

function checkCacheOptions(opts: Pick<GridOptions<GridSpace>, 'queue' | 'cache' | 'key' | 'waitSeconds'>): void {
  const given = (['cache', 'key', 'waitSeconds'] as const).filter((k) => opts[k] !== undefined);
  if (opts.queue !== undefined && given.length) throw new OptionsError('runGrid', given[0]!, 'is for in-process grids and cannot be used with queue: a queued grid keeps its finished runs in Redis, and the same call returns them again');
  if (opts.cache !== undefined && (typeof opts.cache !== 'string' || !opts.cache)) throw new OptionsError('runGrid', 'cache', `must be the path of a results file, got ${describe(opts.cache)}`);
  if (opts.key !== undefined && (opts.key === null || typeof opts.key !== 'object' || Array.isArray(opts.key))) throw new OptionsError('runGrid', 'key', `must be an object of what else defines a run, got ${describe(opts.key)}`);
  if (opts.waitSeconds !== undefined && !(typeof opts.waitSeconds === 'number' && opts.waitSeconds >= 0 && Number.isFinite(opts.waitSeconds))) throw new OptionsError('runGrid', 'waitSeconds', `must be a number of seconds ≥ 0, got ${describe(opts.waitSeconds)}`);
  if (opts.cache === undefined && (opts.key !== undefined || opts.waitSeconds !== undefined)) throw new OptionsError('runGrid', opts.key !== undefined ? 'key' : 'waitSeconds', 'only applies with cache (a results file)');
}

/** `p`, or a timeout error once `ms` have passed (the run itself cannot be stopped in-process). */
async function withTimeout<T>(p: Promise<T> | T, ms: number | undefined): Promise<T> {
  if (ms === undefined) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the run did not finish within timeoutMs = ${ms} ms; in-process it cannot be stopped and may still be running (on a queue the worker ends it)`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface SummarizeOptions {
  /** group by these columns (in first-appearance order of their values) */
  by: string[];
  /** numeric columns to summarise */
  metrics: string[];
  /** also add a text column `<metric>` holding "mean ± std" with this many decimals */
  pm?: number;
}

/**
 * Mean and sample standard deviation (n − 1; null for one run) of each metric
 * per group, plus the group size `n`. Null and NaN values are left out.
 */
export function summarizeGrid(t: aq.ColumnTable, o: SummarizeOptions): aq.ColumnTable {
  const names = t.columnNames();
  for (const c of [...o.by, ...o.metrics]) if (!names.includes(c)) throw new RangeError(`summarizeGrid: no column "${c}"; the columns are ${names.join(', ')}`);
  const groups = new Map<string, { key: Record<string, unknown>; rows: number[] }>();
  const byCols = o.by.map((c) => t.array(c) as ArrayLike<unknown>);
  for (let i = 0; i < t.numRows(); i++) {
    const key = byCols.map((col) => col[i]);
    const id = JSON.stringify(key);
    if (!groups.has(id)) groups.set(id, { key: Object.fromEntries(o.by.map((c, j) => [c, key[j]])), rows: [] });
    groups.get(id)!.rows.push(i);
  }
  const data: Record<string, unknown[]> = {};
  for (const c of o.by) data[c] = [];
  data.n = [];
  for (const m of o.metrics) {
    data[`${m}_mean`] = [];
    data[`${m}_std`] = [];
    if (o.pm !== undefined) data[m] = [];
  }
  for (const g of groups.values()) {
    for (const c of o.by) data[c]!.push(g.key[c]);
    data.n!.push(g.rows.length);
    for (const m of o.metrics) {
      const col = t.array(m) as ArrayLike<unknown>;
      const vals = g.rows.map((i) => col[i]).filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
      const { mean, std } = meanStd(vals);
      data[`${m}_mean`]!.push(mean);
      data[`${m}_std`]!.push(std);
      if (o.pm !== undefined) data[m]!.push(mean === null ? null : `${mean.toFixed(o.pm)} ± ${std === null ? '–' : std.toFixed(o.pm)}`);
    }
  }
  return aq.table(data);
}

/** Mean and sample standard deviation; null where undefined. */
export function meanStd(values: readonly number[]): { mean: number | null; std: number | null } {
  const n = values.length;
  if (!n) return { mean: null, std: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null };
  const ss = values.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}
