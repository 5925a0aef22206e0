/**
 * The types of a grid (its settings, runs, metrics and options), in a leaf:
 * the in-process run (grid.ts), its rows (grid-rows.ts) and the queued run
 * (queue/client.ts, queue/local.ts) all use them, and grid.ts loads the queue.
 */
import type { QueueOptions } from './queue/options.js';

/** setting name -> the values to try */
export type GridSpace = Record<string, readonly unknown[]>;
/** one combination: setting name -> one of its values */
export type GridConfig<S extends GridSpace> = { [K in keyof S]: S[K][number] };
export type GridMetrics = Record<string, unknown> | number | void | undefined;

export interface GridRunInfo {
  /** 0-based position of this run among those that run */
  index: number;
  /** how many runs the grid has (after filter) */
  total: number;
}

export interface GridOptions<S extends GridSpace> {
  /** run only the combinations for which this returns true */
  filter?: (cfg: GridConfig<S>) => boolean;
  /**
   * when a run throws: 'throw' (default) stops the grid; 'record' keeps going
   * and gives that row an `error` column (its metrics stay null). An
   * interrupt (TrainingInterrupted) always stops the grid.
   */
  onError?: 'throw' | 'record';
  /** a line per finished run: true (console.log, the default), false, or your own function */
  log?: boolean | ((line: string, row: Record<string, unknown>) => void);
  /**
   * Run on workers (`sharelora worker`, any number of machines) through Redis:
   * 'redis://[user:password@]host:6379/0', or { url, key, attempts, backoffMs, pollMs }
   * (QueueOptions). Needs a recipe module rather than a function. Finished runs
   * stay in Redis and are returned again, without training, by the same call.
   */
  queue?: string | QueueOptions;
  /** names the grid; with the recipe and a configuration it keys that run's stored result (default: the recipe file's name) */
  name?: string;
  /**
   * A run that takes longer fails with a timeout error (recorded or thrown as
   * onError says), in ms. On a queue the worker kills the run's process; in
   * process the grid moves on but cannot stop the run's own code.
   */
  timeoutMs?: number;
  /**
   * Results file (JSON lines) for in-process runs: a configuration already in
   * it is read back instead of run, so a notebook run again or cut by a time
   * limit only runs what is missing, and with SHARELORA_SHARD=i/n several
   * processes split the grid (claim files, as runProtocol) and each returns
   * the whole table. Metrics must survive JSON (NaN reads back as null); a
   * run that failed (onError 'record') runs again on the next call.
   */
  cache?: string;
  /** with `cache`: everything else that defines a run (model, data sizes, updates …), part of every run's key */
  key?: Record<string, unknown>;
  /** with `cache` and shards: how long a process waits for the others' runs, in seconds (default 3600) */
  waitSeconds?: number;
}

/** the function a grid runs in-process */
export type GridFunction<S extends GridSpace> = (cfg: GridConfig<S>, info: GridRunInfo) => Promise<GridMetrics> | GridMetrics;
