/**
 * A grid worker: pulls signed jobs from the queue, runs their recipe on this
 * machine's backend and stores the metrics. BullMQ holds a lock per running
 * job that the worker renews; when a worker dies the lock lapses and another
 * worker's stalled-job check puts the job back in the queue (at-least-once).
 * A result is stored only by the worker that holds the lock, so a run that
 * executed twice is recorded once.
 */
import { hostname } from 'node:os';
import { useBackend, type BackendInfo } from '../../backend/index.js';
import { metricsToWire } from './canonical.js';
import { bullConnection, checkRedis, loadBullMQ } from './connect.js';
import { QUEUE_NAME, refuseReason, type JobData, type JobResult } from './job.js';
import { checkKeys, checkPositiveInt } from './options.js';
import { callRecipe, recipeFunction, yieldToEventLoop, type RecipeContext } from './recipe.js';
import { redactUrl } from './redis-url.js';
import { resolveKey } from './sign.js';

export interface WorkerOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://… */
  queue: string;
  /** the signing key; default SHARELORA_QUEUE_KEY */
  key?: string;
  /** default 'auto' (useBackend's choice) */
  backend?: string;
  /** jobs run at once in this process (default 1: training runs should not share a device) */
  concurrency?: number;
  /** shown in the grid's display; default host:pid */
  name?: string;
  /**
   * How long a job's lock lasts without renewal (ms, default 60 000). The
   * worker renews it every half of this from its event loop, so it must exceed
   * the longest synchronous stretch of a recipe (a big cpu-backend op).
   */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock lapsed (ms, default 30 000). */
  stalledIntervalMs?: number;
  /** A job that stalls more often than this fails (default 2). */
  maxStalledCount?: number;
  /** where log lines go (default stderr) */
  log?: (line: string) => void;
}

const OPTION_KEYS = ['queue', 'key', 'backend', 'concurrency', 'name', 'lockDurationMs', 'stalledIntervalMs', 'maxStalledCount', 'log'];

export interface GridWorker {
  readonly name: string;
  readonly backend: BackendInfo;
  /** ids of the jobs running now */
  running(): string[];
  /** stop taking jobs; resolves when the running ones have finished */
  close(): Promise<void>;
  /** put the running jobs back in the queue now (another worker runs them) and stop */
  handBack(): Promise<void>;
}

const HANDED_BACK = Symbol('handed back');

export async function startWorker(o: WorkerOptions): Promise<GridWorker> {
  checkKeys('worker', o, OPTION_KEYS);
  const key = resolveKey('worker', o.key);
  const concurrency = checkPositiveInt('worker', 'concurrency', o.concurrency ?? 1);
  const lockDuration = checkPositiveInt('worker', 'lockDurationMs', o.lockDurationMs ?? 60_000, 100);
  const stalledInterval = checkPositiveInt('worker', 'stalledIntervalMs', o.stalledIntervalMs ?? 30_000, 100);
  const maxStalledCount = checkPositiveInt('worker', 'maxStalledCount', o.maxStalledCount ?? 2, 0);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const conn = await checkRedis(o.queue);
  const backend = await useBackend(o.backend ?? 'auto');
  // Load the whole library now, not inside the first job: a recipe's `import 'sharelora'` is then a
  // cache hit, and seconds of module compilation cannot starve the renewal of the job's lock.
  await import('../../index.js');
  const { Worker, UnrecoverableError, WaitingError } = await loadBullMQ();
  const active = new Map<string, () => Promise<void>>();

  const worker = new Worker(QUEUE_NAME, async (job, token) => {
    const why = refuseReason(job.data, key);
    if (why) {
      log(`refused job ${job.id}: ${why}`);
      throw new UnrecoverableError(`refused by worker ${name}: ${why}`);
    }
    const d = job.data as JobData;
    const attempt = job.attemptsMade + 1;
    const startedAt = Date.now();
    const report = (p?: unknown) => job.updateProgress({ worker: name, startedAt, attempt, p: p ?? null }).catch(() => {});
    await report();
    let lastReport = 0;
    const ctx: RecipeContext = {
      index: d.index, total: d.total, grid: d.grid, jobId: job.id!, attempt, worker: name,
      // a progress write per training step would load Redis for nothing: at most one a second
      progress(p) {
        const now = Date.now();
        if (now - lastReport >= 1000) { lastReport = now; void report(p); }
        return yieldToEventLoop();
      },
    };
    let handBack!: () => void;
    const handedBack = new Promise<never>((_, reject) => { handBack = () => reject(HANDED_BACK); });
    active.set(job.id!, async () => {
      try {
        await job.moveToWait(token);
      } finally {
        // even if the move failed: our lock then lapses and the stalled check re-queues the job
        handBack();
      }
    });
    const t0 = performance.now();
    try {
      const fn = await recipeFunction(d.recipe);
      const metrics = await Promise.race([callRecipe(fn, d.config, ctx, d.recipe.file), handedBack]);
      const seconds = (performance.now() - t0) / 1000;
      log(`done ${job.id} (${d.grid} [${d.index + 1}/${d.total}], attempt ${attempt}) in ${seconds.toFixed(1)} s`);
      return { metrics: metricsToWire(metrics ?? null), worker: name, seconds } satisfies JobResult;
    } catch (e) {
      if (e === HANDED_BACK) {
        log(`handed back ${job.id}`);
        throw new WaitingError();
      }
      log(`failed ${job.id} (${d.grid} [${d.index + 1}/${d.total}], attempt ${attempt}): ${(e as Error)?.message ?? e}`);
      throw e instanceof Error ? e : new Error(String(e));
    } finally {
      active.delete(job.id!);
    }
  }, { connection: bullConnection(conn), concurrency, lockDuration, stalledInterval, maxStalledCount, name, autorun: false });

  let lastError = '';
  worker.on('error', (e) => {
    // ioredis reports every reconnect attempt; one line per distinct error is enough
    if (e.message !== lastError) log(`queue error: ${e.message}`);
    lastError = e.message;
  });
  worker.run().catch((e: Error) => log(`worker stopped: ${e.message}`));
  await worker.waitUntilReady();
  log(`worker ${name} ready on ${redactUrl(o.queue)} (backend ${backend.name}, concurrency ${concurrency})`);

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= worker.close());
  return {
    name,
    backend,
    running: () => [...active.keys()],
    close,
    async handBack() {
      const done = close();
      await Promise.all([...active.values()].map((f) => f().catch((e) => log(`could not hand back a job (${(e as Error).message}); its lock will lapse and another worker will take it`))));
      await done;
    },
  };
}
