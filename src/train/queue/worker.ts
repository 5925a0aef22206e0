/**
 * A grid worker: pulls signed jobs from the queue and runs their recipe in a
 * runner process on this machine's backend (runner.ts), then stores the
 * metrics. BullMQ holds a lock per running job, renewed from this process's
 * event loop, which recipes never block because they run in the runner. When
 * a worker dies the lock lapses and another worker's stalled-job check puts
 * the job back in the queue (at-least-once). A result is stored only by the
 * worker that holds the lock, so a run that executed twice is recorded once.
 */
import { hostname } from 'node:os';
import { bullConnection, checkRedis, loadBullMQ } from './connect.js';
import { clip } from '../grid-rows.js';
import { checkJob, QUEUE_NAME, signResult } from './job.js';
import { checkPositiveInt } from './options.js';
import { checkOptions } from '../../util/options.js';
import { redactUrl } from './redis-url.js';
import { Runner } from './runner-pool.js';
import { resolveKey } from './sign.js';

export interface WorkerOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://… */
  queue: string;
  /** the signing key; default SHARELORA_QUEUE_KEY */
  key?: string;
  /** default 'auto' (useBackend's choice) */
  backend?: string;
  /** runs at once, each in its own runner process (default 1: training runs should not share a device) */
  concurrency?: number;
  /** shown in the grid's display; default host:pid */
  name?: string;
  /** How long a job's lock lasts without renewal (ms, default 30 000); a dead worker's job returns after about this. */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock lapsed (ms, default 15 000). */
  stalledIntervalMs?: number;
  /** A job whose worker died more often than this fails (default 2). */
  maxStalledCount?: number;
  /** where log lines go (default stderr) */
  log?: (line: string) => void;
}

const OPTION_KEYS = ['queue', 'key', 'backend', 'concurrency', 'name', 'lockDurationMs', 'stalledIntervalMs', 'maxStalledCount', 'log'];

export interface GridWorker {
  readonly name: string;
  readonly backend: { name: string; device: string };
  /** ids of the jobs running now */
  running(): string[];
  /** stop taking jobs; resolves when the running ones have finished */
  close(): Promise<void>;
  /** put the running jobs back in the queue now (another worker runs them), end their runs, and stop */
  handBack(): Promise<void>;
}

const HANDED_BACK = Symbol('handed back');
const TIMED_OUT = Symbol('timed out');
/** how long a job signed with a key this worker lacks waits before a worker (perhaps one with that key) looks again */
const LEAVE_DELAY_MS = 2000;
/** an error message longer than this is cut before it goes to the log and to Redis */
const MAX_MESSAGE = 10_000;

/** A job id as it may appear in a log line: ids come from Redis, and one with a newline would forge lines. */
const safeId = (id: unknown): string => clip(String(id), 200);

export async function startWorker(o: WorkerOptions): Promise<GridWorker> {
  checkOptions('worker', o, OPTION_KEYS);
  const key = resolveKey('worker', o.key);
  const concurrency = checkPositiveInt('worker', 'concurrency', o.concurrency ?? 1);
  const lockDuration = checkPositiveInt('worker', 'lockDurationMs', o.lockDurationMs ?? 30_000, 100);
  const stalledInterval = checkPositiveInt('worker', 'stalledIntervalMs', o.stalledIntervalMs ?? 15_000, 100);
  const maxStalledCount = checkPositiveInt('worker', 'maxStalledCount', o.maxStalledCount ?? 2, 0);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const backendName = o.backend ?? 'auto';
  const conn = await checkRedis(o.queue);
  const { Worker, UnrecoverableError, WaitingError, DelayedError } = await loadBullMQ();
  // Runners start before the first job is taken, so their start-up is no job's time.
  const idle = await Promise.all(Array.from({ length: concurrency }, () => Runner.start(backendName, log)));
  const backend = idle[0]!.backend;
  const active = new Map<string, () => Promise<void>>();
  let stopping = false;

  const left = new Set<string>();
  const worker = new Worker(QUEUE_NAME, async (job, token) => {
    const id = String(job.id);
    const check = checkJob(job.data, key, id);
    if (!check.ok) {
      if (check.leave) {
        // another worker may hold the key it was signed with: failing it here would fail it for all of them
        if (!left.has(id)) log(`left job ${safeId(id)} for another worker: ${check.reason}`);
        left.add(id);
        await job.moveToDelayed(Date.now() + LEAVE_DELAY_MS, token);
        throw new DelayedError();
      }
      log(`refused job ${safeId(id)}: ${check.reason}`);
      throw new UnrecoverableError(`refused by worker ${name}: ${check.reason}`);
    }
    const d = check.data;
    const attempt = job.attemptsMade + 1;
    const startedAt = Date.now();
    const report = (p?: unknown) => job.updateProgress({ worker: name, startedAt, attempt, p: p ?? null }).catch(() => {});
    await report();
    let lastReport = 0;
    // a progress write per training step would load Redis for nothing: at most one a second
    const progress = (p: unknown) => {
      const now = Date.now();
      if (now - lastReport >= 1000) { lastReport = now; void report(p); }
    };
    const runner = idle.pop() ?? await Runner.start(backendName, log);
    let handBack!: () => void;
    const handedBack = new Promise<never>((_, reject) => { handBack = () => reject(HANDED_BACK); });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => { if (d.timeoutMs !== null) timer = setTimeout(() => reject(TIMED_OUT), d.timeoutMs); });
    active.set(id, async () => {
      try {
        await job.moveToWait(token);
      } finally {
        // even if the move failed: our lock then lapses and the stalled check re-queues the job
        runner.kill();
        handBack();
      }
    });
    const where = `${safeId(id)} (${d.grid} [${d.index + 1}/${d.total}], attempt ${attempt})`;
    const t0 = performance.now();
    try {
      const metrics = await Promise.race([runner.run({
        type: 'run', recipe: d.recipe, config: d.config, index: d.index, total: d.total, grid: d.grid, jobId: id, attempt, worker: name,
      }, progress), handedBack, timedOut]);
      const seconds = (performance.now() - t0) / 1000;
      log(`done ${where} in ${seconds.toFixed(1)} s`);
      return signResult(d, metrics, name, seconds, key);
    } catch (e) {
      if (e === HANDED_BACK) {
        log(`handed back ${safeId(id)}`);
        throw new WaitingError();
      }
      if (e === TIMED_OUT) {
        runner.kill();
        const why = `the run exceeded its time limit (runGrid timeoutMs = ${d.timeoutMs} ms) and was stopped on worker ${name}`;
        log(`failed ${where}: ${why}`);
        throw new UnrecoverableError(why);
      }
      const message = (e as Error)?.message ?? String(e);
      log(`failed ${where}: ${clip(message, 2000)}`);
      // a 50 MB message would go whole to Redis and to every table that shows it
      if (message.length > MAX_MESSAGE) throw new Error(clip(message, MAX_MESSAGE));
      throw e;
    } finally {
      clearTimeout(timer);
      active.delete(id);
      if (runner.alive && !runner.retiring && !stopping) idle.push(runner);
      else {
        runner.kill();
        // its replacement starts now, not when the next job is already waiting
        if (!stopping) Runner.start(backendName, log).then((r) => (stopping ? r.kill() : idle.push(r)), () => {});
      }
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
  const close = () => (closing ??= (async () => {
    stopping = true;
    await worker.close();
    for (const r of idle.splice(0)) r.kill();
  })());
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
