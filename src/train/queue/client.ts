/**
 * runGrid with a queue: sign and queue one job per configuration (ids derived
 * from the content, so stored results are found again), then follow them until
 * each has finished or failed for good, and build the same table as in-process.
 */
import type * as aq from 'arquero';
import type { GridMetrics, GridOptions, GridSpace } from '../grid-types.js';
import { gridLabel, gridLogLine, gridRow, gridTable, metricNameProblem } from '../grid-rows.js';
import { stopRequested, TrainingInterrupted } from '../stop.js';
import { displaySink } from '../../notebook/session.js';
import { metricsFromWire } from './canonical.js';
import { checkRedis } from './connect.js';
import { GridJobs, RedisUnreachable, type Final, type JobSpec } from './grid-jobs.js';
import { redactUrl } from './redis-url.js';
import { checkGridName, jobId } from './job.js';
import { defaultGridName } from './local.js';
import { checkPositiveInt, type QueueOptions } from './options.js';
import { checkOptions } from '../../util/options.js';
import { isRecipeSpec, readRecipe, type RecipeSpec } from './recipe.js';
import { resolveKey } from './sign.js';
import { GridDisplay, progressText, type GridStatus, type RunningRun } from './status.js';

export type { QueueOptions } from './options.js';

const QUEUE_KEYS = ['url', 'key', 'attempts', 'backoffMs', 'pollMs'];

/** Raised when the notebook interrupts a queued grid; the runs go on on the workers. */
export class GridInterrupted extends TrainingInterrupted {
  constructor(finished: number, total: number) {
    super(0);
    this.message = `grid interrupted with ${finished} of ${total} runs finished; the others stay queued and the workers keep going — run the same cell again to collect them`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a grid waits for an unreachable Redis before it gives up (the runs stay queued). */
const MAX_OUTAGE_MS = 10 * 60_000;

export function checkQueueOptions(q: unknown): Required<Omit<QueueOptions, 'key'>> & { key?: string } {
  const o = (typeof q === 'string' ? { url: q } : q) as QueueOptions;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TypeError(`runGrid: queue must be a Redis URL or { url, key, attempts, backoffMs, pollMs }; got ${JSON.stringify(q)}`);
  checkOptions('runGrid queue', o, QUEUE_KEYS);
  if (typeof o.url !== 'string') throw new TypeError('runGrid: queue.url is required: redis://host:6379/0');
  return {
    url: o.url,
    key: o.key,
    attempts: checkPositiveInt('runGrid queue', 'attempts', o.attempts ?? 3),
    backoffMs: checkPositiveInt('runGrid queue', 'backoffMs', o.backoffMs ?? 10_000, 0),
    pollMs: checkPositiveInt('runGrid queue', 'pollMs', o.pollMs ?? 1000, 10),
  };
}

export async function runQueuedGrid<S extends GridSpace>(
  keys: string[],
  configs: Record<string, unknown>[],
  fn: unknown,
  opts: GridOptions<S>,
  log: ((line: string, row: Record<string, unknown>) => void) | undefined,
): Promise<aq.ColumnTable> {
  if (!isRecipeSpec(fn)) {
    throw new TypeError('runGrid: a queued grid runs on other machines, so it needs a recipe module, not a function: move the function into a file as `export async function run(config, ctx) { ... }` and pass { module: "that-file.mjs" }');
  }
  const q = checkQueueOptions(opts.queue);
  const key = resolveKey('runGrid', q.key);
  const recipe = readRecipe(fn as RecipeSpec);
  const grid = checkGridName(opts.name ?? defaultGridName(recipe));
  const total = configs.length;
  const runIds = configs.map((cfg) => jobId(grid, recipe, cfg));
  // identical configurations share one job (and one result)
  const specs = new Map<string, JobSpec>();
  const runsOf = new Map<string, number[]>();
  runIds.forEach((id, index) => {
    if (!specs.has(id)) specs.set(id, { config: configs[index]!, index });
    runsOf.set(id, [...(runsOf.get(id) ?? []), index]);
  });
  const ids = [...specs.keys()];
  const idSet = new Set(ids);
  const conn = await checkRedis(q.url);
  const jobs = await GridJobs.open(conn, { grid, recipe, key, total, attempts: q.attempts, backoffMs: q.backoffMs, timeoutMs: opts.timeoutMs, specs });

  // In a notebook the live display replaces the default per-run lines (a long grid would flood the cell);
  // a log function still gets them. Status lines go only where the default log would.
  const display = new GridDisplay(opts.log === undefined || opts.log === true ? (line) => console.log(line) : undefined);
  if (displaySink() !== undefined && typeof opts.log !== 'function') log = undefined;
  const finals = new Map<string, Final>();
  const rows = new Map<number, Record<string, unknown>>();
  const perWorker = new Map<string, { done: number; failed: number }>();
  const recent: string[] = [];
  let cached = 0, doneNow = 0, failedNow = 0;
  const t0 = performance.now();

  const settle = (id: string, got: Final) => {
    let f = got;
    let metrics: GridMetrics | undefined;
    if (f.ok) {
      // signed by a worker with the key, but still checked: a row is built from it
      metrics = metricsFromWire(f.result.metrics) as GridMetrics;
      const m = typeof metrics === 'number' ? { value: metrics } : metrics;
      const problem = m !== null && m !== undefined && (typeof m !== 'object' || Array.isArray(m))
        ? 'result refused: its metrics are not an object, a number or nothing' : metricNameProblem(keys, m);
      if (problem) {
        f = { ok: false, error: problem.startsWith('result refused') ? problem : `result refused: ${problem}`, worker: f.result.worker, seconds: f.result.seconds, attempts: 0, refused: true };
        metrics = undefined;
      }
    }
    finals.set(id, f);
    const worker = f.ok ? f.result.worker : f.worker ?? '?';
    const n = runsOf.get(id)!.length;
    if (f.ok && f.cached) cached += n;
    else {
      const c = perWorker.get(worker) ?? { done: 0, failed: 0 };
      perWorker.set(worker, f.ok ? { ...c, done: c.done + 1 } : { ...c, failed: c.failed + 1 });
      if (f.ok) doneNow += n; else failedNow += n;
    }
    const error = f.ok ? undefined : f.error;
    for (const index of runsOf.get(id)!) {
      const row = gridRow(keys, configs[index]!, metrics ?? undefined, error, f.ok ? f.result.seconds : f.seconds);
      rows.set(index, row);
      if (f.ok && f.cached) continue;
      const line = `${gridLogLine(keys, row, metrics ?? undefined, error, index, total)} on ${worker}`;
      recent.push(line);
      if (recent.length > 5) recent.shift();
      log?.(line, row);
    }
  };

  const status = async (pending: string[], final?: string): Promise<GridStatus> => {
    const now = Date.now();
    const running: RunningRun[] = (await jobs.active(idSet)).map((j) => {
      const cfg = specs.get(j.id)!.config;
      return {
        settings: keys.map((k) => `${k}=${gridLabel(cfg[k])}`).join(' '), worker: j.worker ?? '?',
        attempt: j.attempt, seconds: j.startedAt ? Math.max(0, now - j.startedAt) / 1000 : 0, progress: progressText(j.p),
      };
    });
    const left = pending.reduce((a, id) => a + runsOf.get(id)!.length, 0);
    const elapsedS = (performance.now() - t0) / 1000;
    return {
      grid, total, cached, done: doneNow, failed: failedNow, running, queued: Math.max(0, left - running.length),
      retrying: (await jobs.inSet('delayed', pending)).size, workersConnected: await jobs.workersConnected(), perWorker, elapsedS, recent: [...recent],
      etaS: doneNow + failedNow > 0 && left > 0 ? (elapsedS / (doneNow + failedNow)) * left : undefined,
      final: final ?? (left === 0 ? 'finished' : undefined),
    };
  };

  /** One look at the queue: true when every run has finished. */
  const pollOnce = async (tick: number): Promise<boolean> => {
    const pending = ids.filter((id) => !finals.has(id));
    const failure = [...finals.entries()].find((e): e is [string, Extract<Final, { ok: false }>] => !e[1].ok);
    if (failure && opts.onError !== 'record') {
      // runs no worker has started are withdrawn; running ones finish and are stored for the next call
      await jobs.withdraw(pending);
      const [id, f] = failure;
      const index = runsOf.get(id)![0]!;
      const settings = keys.map((k) => `${k}=${rows.get(index)?.[k]}`).join(' ');
      throw new Error(`${f.error} (run [${index + 1}/${total}] ${settings} of grid ${grid}, on ${f.worker ?? '?'} after ${f.attempts} tries; pass onError: 'record' to keep going)`);
    }
    if (pending.length === 0) {
      display.show(await status(pending), true);
      return true;
    }
    if (stopRequested()) {
      display.show(await status(pending, 'interrupted'), true);
      throw new GridInterrupted(cached + doneNow, total);
    }
    display.show(await status(pending));
    await sleep(q.pollMs);
    for (const state of ['completed', 'failed'] as const) {
      for (const id of await jobs.inSet(state, pending)) if (!finals.has(id)) settle(id, await jobs.final(id, state, false));
    }
    // Nothing lost: a job removed behind our back (by hand, by another tool) is queued again.
    if (tick % 10 === 0) {
      const still = pending.filter((id) => !finals.has(id));
      const there = await jobs.existing(still);
      await jobs.add(still.filter((id) => !there.has(id)));
    }
    return false;
  };

  try {
    // What is there already: stored results are reused; failed runs are tried again (a fix or another machine may help).
    for (const id of await jobs.inSet('completed', ids)) {
      const f = await jobs.final(id, 'completed', true);
      // a refused result (unsigned, forged) is not kept: the run is queued again for a real worker
      if (f.ok) settle(id, f);
      else await jobs.remove(id);
    }
    for (const id of await jobs.inSet('failed', ids)) await jobs.remove(id);
    const unfinished = ids.filter((id) => !finals.has(id));
    const there = await jobs.existing(unfinished);
    await jobs.add(unfinished.filter((id) => !there.has(id)));
    if (cached) log?.(`grid ${grid}: ${cached} of ${total} runs already finished (stored in Redis); ${total - cached} to go`, {});

    let outageSince: number | undefined;
    for (let tick = 1; ; tick++) {
      try {
        if (await pollOnce(tick)) break;
        if (outageSince !== undefined) {
          log?.(`grid ${grid}: Redis answers again after ${((Date.now() - outageSince) / 1000).toFixed(0)} s`, {});
          outageSince = undefined;
        }
      } catch (e) {
        if (!(e instanceof RedisUnreachable)) throw e;
        if (stopRequested()) throw new GridInterrupted(cached + doneNow, total);
        const now = Date.now();
        if (outageSince === undefined) {
          outageSince = now;
          log?.(`grid ${grid}: Redis at ${redactUrl(q.url)} does not answer (${e.message}); waiting for it — the workers keep going`, {});
        }
        if (now - outageSince > MAX_OUTAGE_MS) {
          throw new Error(`runGrid: Redis at ${redactUrl(q.url)} has not answered for ${Math.round((now - outageSince) / 60_000)} minutes (${e.message}); the runs stay queued and the workers keep going once it is back — run the same call again to collect them`);
        }
        await sleep(q.pollMs);
      }
    }
    return gridTable(keys, configs.map((_, index) => rows.get(index)!));
  } finally {
    await jobs.close();
  }
}
