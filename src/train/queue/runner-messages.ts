/**
 * The IPC messages between a worker's runner pool (runner-pool.ts) and its
 * runner processes (runner.ts), in a leaf: the runner loads the whole library
 * (index.ts), which reaches the pool, so the pool must not import the runner.
 */
import type { Recipe } from './recipe.js';

export type ToRunner = { type: 'run'; recipe: Recipe; config: Record<string, unknown>; index: number; total: number; grid: string; jobId: string; attempt: number; worker: string };
export type FromRunner =
  | { type: 'ready'; backend: { name: string; device: string } }
  | { type: 'progress'; p: unknown }
  | { type: 'done'; metrics: unknown }
  | { type: 'error'; message: string; stack?: string; retire?: boolean }
  /** an error thrown outside any run, or by a finished one: logged by the worker, which then replaces this process */
  | { type: 'stray'; message: string };
