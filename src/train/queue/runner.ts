/**
 * The process that runs recipes for a worker (one per --concurrency slot).
 * Recipes block their event loop for as long as they like (model loading,
 * tokenisation, a cpu-backend step); the worker process, whose event loop stays
 * free, keeps renewing the job's lock and hears signals meanwhile, and can end
 * a run at once by killing this process. Started by runner-pool.ts with IPC.
 */
import { useBackend } from '../../backend/index.js';
import { flags } from '../../backend/flags.js';
import { metricsToWire } from './canonical.js';
import { callRecipe, recipeFunction, yieldToEventLoop, type Recipe } from './recipe.js';

export type ToRunner = { type: 'run'; recipe: Recipe; config: Record<string, unknown>; index: number; total: number; grid: string; jobId: string; attempt: number; worker: string };
export type FromRunner =
  | { type: 'ready'; backend: { name: string; device: string } }
  | { type: 'progress'; p: unknown }
  | { type: 'done'; metrics: unknown }
  | { type: 'error'; message: string; stack?: string };

const send = (m: FromRunner) => process.send!(m);

async function main(): Promise<void> {
  // the worker is gone (even SIGKILLed): its runs are not ours to finish
  process.on('disconnect', () => process.exit(0));
  const backend = await useBackend(flags.runnerBackend);
  // the whole library now, not inside the first run: a recipe's `import 'sharelora'` is then a cache hit
  await import('../../index.js');
  process.on('message', (m: ToRunner) => void run(m));
  send({ type: 'ready', backend: { name: backend.name, device: backend.device } });
}

async function run(m: ToRunner): Promise<void> {
  try {
    const fn = await recipeFunction(m.recipe);
    const metrics = await callRecipe(fn, m.config, {
      index: m.index, total: m.total, grid: m.grid, jobId: m.jobId, attempt: m.attempt, worker: m.worker,
      progress(p) {
        send({ type: 'progress', p });
        return yieldToEventLoop();
      },
    }, m.recipe.file);
    send({ type: 'done', metrics: metricsToWire(metrics ?? null) });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ type: 'error', message: err.message, stack: err.stack });
  }
}

if (!process.send) {
  process.stderr.write('runner.js is started by a sharelora worker (sharelora worker --queue …), not by hand\n');
  process.exit(2);
}
main().catch((e: Error) => {
  send({ type: 'error', message: `the runner could not start: ${e.message}` });
  process.exit(1);
});
