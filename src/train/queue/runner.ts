/**
 * The process that runs recipes for a worker (one per --concurrency slot).
 * Recipes block their event loop for as long as they like (model loading,
 * tokenisation, a cpu-backend step); the worker process, whose event loop stays
 * free, keeps renewing the job's lock and hears signals meanwhile, and can end
 * a run at once by killing this process. Started by runner-pool.ts with IPC.
 *
 * An error thrown outside the awaited run (a timer or promise a recipe left
 * behind) would end this process, and with it whichever run happens to be
 * going on. Each run's callbacks carry its job id (AsyncLocalStorage), so such
 * an error fails the run that made it while it runs, and otherwise is logged
 * as that earlier run's, the current run goes on, and the worker replaces this
 * process after it (its state may be damaged).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { useBackend } from '../../backend/index.js';
import { flags } from '../../backend/flags.js';
import { metricsToWire } from './canonical.js';
import { callRecipe, recipeFunction, yieldToEventLoop } from './recipe.js';
import type { FromRunner, ToRunner } from './runner-messages.js';


const send = (m: FromRunner) => process.send!(m);

/** the job id of the run whose code is executing (callbacks inherit it) */
const owner = new AsyncLocalStorage<string>();
/** the run going on now, and how to end it with an error */
let current: { jobId: string; fail: (e: unknown) => void } | undefined;

function stray(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  const from = owner.getStore();
  if (current && from === current.jobId) return current.fail(err);
  const whose = from === undefined ? 'outside any run' : `by run ${from}, which had already finished (a timer or promise it left behind)`;
  send({ type: 'stray', message: `an error was thrown ${whose}: ${err.message}; ${current ? `run ${current.jobId} goes on, and ` : ''}this runner process is replaced after it` });
}

async function main(): Promise<void> {
  // the worker is gone (even SIGKILLed): its runs are not ours to finish
  process.on('disconnect', () => process.exit(0));
  process.on('uncaughtException', stray);
  process.on('unhandledRejection', stray);
  const backend = await useBackend(flags.runnerBackend);
  // the whole library now, not inside the first run: a recipe's `import 'sharelora'` is then a cache hit
  await import('../../index.js');
  process.on('message', (m: ToRunner) => void run(m));
  send({ type: 'ready', backend: { name: backend.name, device: backend.device } });
}

async function run(m: ToRunner): Promise<void> {
  let settled = false;
  const finish = (msg: FromRunner) => {
    if (settled) return;
    settled = true;
    current = undefined;
    send(msg);
  };
  const failWith = (e: unknown, retire = false) => {
    const err = e instanceof Error ? e : new Error(String(e));
    finish({ type: 'error', message: err.message, stack: err.stack, ...(retire && { retire }) });
  };
  // an error its own timers throw while it runs is its error; its code may still be running, so the process is replaced
  current = { jobId: m.jobId, fail: (e) => failWith(e, true) };
  await owner.run(m.jobId, async () => {
    try {
      const fn = await recipeFunction(m.recipe);
      const metrics = await callRecipe(fn, m.config, {
        index: m.index, total: m.total, grid: m.grid, jobId: m.jobId, attempt: m.attempt, worker: m.worker,
        progress(p) {
          if (!settled) send({ type: 'progress', p });
          return yieldToEventLoop();
        },
      }, m.recipe.file);
      finish({ type: 'done', metrics: metricsToWire(metrics ?? null) });
    } catch (e) {
      failWith(e);
    }
  });
}

if (!process.send) {
  process.stderr.write('runner.js is started by a sharelora worker (sharelora worker --queue …), not by hand\n');
  process.exit(2);
}
main().catch((e: Error) => {
  send({ type: 'error', message: `the runner could not start: ${e.message}` });
  process.exit(1);
});
