/**
 * A recipe run in this process: the same loading, context and checks that a
 * worker applies, so a recipe that works here works on the queue.
 */
import type { GridMetrics, GridRunInfo } from '../grid-types.js';
import { checkGridName, jobId } from './job.js';
import { callRecipe, readRecipe, recipeFunction, yieldToEventLoop, type Recipe, type RecipeSpec } from './recipe.js';

/** The grid name when none is given: the recipe file's name without its extension. */
export function defaultGridName(recipe: Recipe): string {
  return recipe.file.replace(/\.m?js$/, '').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100) || 'grid';
}

export async function localRecipe(spec: RecipeSpec, name: string | undefined, configs: Record<string, unknown>[]): Promise<(cfg: Record<string, unknown>, info: GridRunInfo) => Promise<GridMetrics>> {
  const recipe = readRecipe(spec);
  const grid = checkGridName(name ?? defaultGridName(recipe));
  // ids up front: a configuration JSON cannot carry fails before any run, as it would on the queue
  const ids = configs.map((c) => jobId(grid, recipe, c));
  const fn = await recipeFunction(recipe);
  return async (cfg, info) => callRecipe(fn, cfg, {
    index: info.index, total: info.total, grid, jobId: ids[info.index]!, attempt: 1, worker: 'in-process', progress: yieldToEventLoop,
  }, recipe.file) as Promise<GridMetrics>;
}
