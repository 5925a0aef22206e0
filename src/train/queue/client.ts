/**
 * runGrid with a queue: sign and queue one job per configuration (ids derived
 * from the content, so stored results are found again), then follow them until
 * each has finished or failed for good, and build the same table as in-process.
 */
import type * as aq from 'arquero';
import { gridLogLine, gridRow, gridTable, type GridMetrics, type GridOptions, type GridSpace } from '../grid.js';
import { stopRequested, TrainingInterrupted } from '../stop.js';
import { metricsFromWire } from './canonical.js';
import { bullConnection, checkRedis, loadBullMQ, redisClient } from './connect.js';
import { checkGridName, jobId, makeJobData, QUEUE_NAME, type JobResult } from './job.js';
import { defaultGridName } from './local.js';
import { checkKeys, checkPositiveInt } from './options.js';
import { isRecipeSpec, readRecipe, type RecipeSpec } from './recipe.js';
import { resolveKey } from './sign.js';
import { GridDisplay, type GridStatus, type RunningRun } from './status.js';
import { displaySink } from '../../notebook/session.js';

export interface QueueOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://… */
  url: string;
  /** the signing key, the same as the workers' (default: SHARELORA_QUEUE_KEY) */
  key?: string;
  /** tries per run before its error is final (default 3) */
  attempts?: number;
  /** first retry's delay in ms, doubling after each failure (default 10 000) */
  backoffMs?: number;
  /** how often to look at the queue, ms (default 1000) */
  pollMs?: number;
}

const QUEUE_KEYS = ['url', 'key', 'attempts', 'backoffMs', 'pollMs'];

/** Raised when the notebook interrupts a queued grid; the runs go on on the workers. */
export class GridInterrupted extends TrainingInterrupted {
  constructor(finished: number, total: number) {
    super(0);
    this.message = `grid interrupted with ${finished} of ${total} runs finished; the others stay queued and the workers keep going — run the same cell again to collect them`;
  }
}

interface Run {
  index: number;
  cfg: Record<string, unknown>;
  id: string;
}

type Final = { ok: true; result: JobResult; cached: boolean } | { ok: false; error: string; worker?: string; seconds: number; attempts: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHUNK = 1000;

function chunks<T>(xs: T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export function checkQueueOptions(q: unknown): Required<Omit<QueueOptions, 'key'>> & { key?: string } {
  const o = (typeof q === 'string' ? { url: q } : q) as QueueOptions;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TypeError(`runGrid: queue must be a Redis URL or { url, key, attempts, backoffMs, pollMs }; got ${JSON.stringify(q)}`);
  checkKeys('runGrid queue', o, QUEUE_KEYS);
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
  const runs: Run[] = configs.map((cfg, index) => ({ index, cfg, id: jobId(grid, recipe, cfg) }));
  const conn = await checkRedis(q.url);
  const { Queue } = await loadBullMQ();
  const queue = new Queue(QUEUE_NAME, { connection: bullConnection(conn) });
  let lastError = '';
  queue.on('error', (e: Error) => {
    if (e.message !== lastError) process.stderr.write(`runGrid queue: ${e.message}\n`);
    lastError = e.message;
  });
  const client = await redisClient(conn, false);
  client.on('error', () => {}); // the queue's own handler reports connection trouble
  await client.connect();
  const byId = new Map<string, Run[]>();
  for (const r of runs) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  const ids = [...byId.keys()];
  const jobOpts = { attempts: q.attempts, backoff: { type: 'exponential', delay: q.backoffMs }, removeOnComplete: false, removeOnFail: false };
  const add = async (toAdd: string[]) => {
    for (const part of chunks(toAdd, 200)) {
      await queue.addBulk(part.map((id) => {
        const r = byId.get(id)![0]!;
        return { name: grid, data: makeJobData(grid, recipe, r.cfg, r.index, runs.length, key), opts: { ...jobOpts, jobId: id } };
      }));
    }
  };
  /** which of `list` are in one of BullMQ's sorted sets (completed, failed, delayed) */
  const inSet = async (set: string, list: string[]): Promise<Set<string>> => {
    const out = new Set<string>();
    for (const part of chunks(list)) {
      const scores = await client.zmscore(queue.toKey(set), ...part);
      part.forEach((id, i) => { if (scores[i] !== null) out.add(id); });
    }
    return out;
  };
  const finals = new Map<string, Final>();
  const readFinal = async (id: string, cached: boolean): Promise<Final | undefined> => {
    const job = await queue.getJob(id);
    if (!job) return undefined;
    const state = await job.getState();
    if (state === 'completed') return { ok: true, result: job.returnvalue as JobResult, cached };
    if (state === 'failed') {
      const seconds = job.finishedOn && job.processedOn ? Math.max(0, job.finishedOn - job.processedOn) / 1000 : 0;
      return { ok: false, error: job.failedReason || 'failed (no reason recorded)', worker: job.processedBy, seconds, attempts: job.attemptsMade };
    }
    return undefined;
  };

  // In a notebook the live display replaces the default per-run lines (a long grid would flood the cell);
  // a log function still gets them. Status lines go only where the default log would.
  const display = new GridDisplay(opts.log === undefined || opts.log === true ? (line) => console.log(line) : undefined);
  if (displaySink() !== undefined && typeof opts.log !== 'function') log = undefined;
  const t0 = performance.now();
  try {
    // What is already there: stored results are reused; failed runs are tried again (a fix or another machine may help).
    const [completed, failed] = [await inSet('completed', ids), await inSet('failed', ids)];
    for (const id of completed) {
      const f = await readFinal(id, true);
      if (f?.ok) finals.set(id, f);
    }
    for (const id of failed) await queue.remove(id);
    const existing = new Set<string>();
    for (const part of chunks(ids.filter((id) => !finals.has(id)))) {
      const pipe = client.pipeline();
      for (const id of part) pipe.exists(queue.toKey(id));
      const res = (await pipe.exec()) ?? [];
      part.forEach((id, i) => { if (res[i]?.[1] === 1) existing.add(id); });
    }
    await add(ids.filter((id) => !finals.has(id) && !existing.has(id)));

    const perWorker = new Map<string, { done: number; failed: number }>();
    const recent: string[] = [];
    const rows = new Map<number, Record<string, unknown>>();
    let cached = 0, doneNow = 0, failedNow = 0;
    const settle = (id: string, f: Final) => {
      finals.set(id, f);
      const worker = f.ok ? f.result.worker : f.worker ?? '?';
      if (f.ok && f.cached) cached += byId.get(id)!.length;
      else {
        const c = perWorker.get(worker) ?? { done: 0, failed: 0 };
        if (f.ok) c.done++; else c.failed++;
        perWorker.set(worker, c);
        if (f.ok) doneNow += byId.get(id)!.length; else failedNow += byId.get(id)!.length;
      }
      for (const r of byId.get(id)!) {
        const metrics = f.ok ? metricsFromWire(f.result.metrics) as GridMetrics : undefined;
        const row = gridRow(keys, r.cfg, metrics ?? undefined, f.ok ? undefined : f.error, f.ok ? f.result.seconds : f.seconds);
        rows.set(r.index, row);
        if (!(f.ok && f.cached)) {
          const line = `${gridLogLine(keys, row, metrics ?? undefined, f.ok ? undefined : f.error, r.index, runs.length)}${worker ? ` on ${worker}` : ''}`;
          recent.push(line);
          if (recent.length > 5) recent.shift();
          log?.(line, row);
        }
      }
    };
    for (const [id, f] of finals) settle(id, f);
    if (cached) log?.(`grid ${grid}: ${cached} of ${runs.length} runs already finished (stored in Redis); ${runs.length - cached} to go`, {});

    let tick = 0;
    for (;;) {
      const pending = ids.filter((id) => !finals.has(id));
      const failedFinal = [...finals.entries()].find(([, f]) => !f.ok);
      if (failedFinal && opts.onError !== 'record') {
        await withdraw(pending);
        const [id, f] = failedFinal as [string, Extract<Final, { ok: false }>];
        const r = byId.get(id)![0]!;
        throw new Error(`${f.error} (run [${r.index + 1}/${runs.length}] ${keys.map((k) => `${k}=${rows.get(r.index)?.[k]}`).join(' ')} of grid ${grid}, on ${f.worker ?? '?'} after ${f.attempts} tries; pass onError: 'record' to keep going)`);
      }
      const status = async (): Promise<GridStatus> => {
        const active = (await queue.getActive()).filter((j) => byId.has(j.id!));
        const now = Date.now();
        const running: RunningRun[] = active.map((j) => {
          const p = (j.progress ?? {}) as { worker?: string; startedAt?: number; attempt?: number; p?: unknown };
          const r = byId.get(j.id!)![0]!;
          return {
            settings: keys.map((k) => `${k}=${gridRowLabel(r.cfg[k])}`).join(' '), worker: p.worker ?? j.processedBy ?? '?',
            attempt: p.attempt ?? j.attemptsMade + 1, seconds: p.startedAt ? (now - p.startedAt) / 1000 : 0, progress: progressText(p.p),
          };
        });
        const delayed = await inSet('delayed', pending);
        const elapsedS = (performance.now() - t0) / 1000;
        const left = pending.length;
        return {
          grid, total: runs.length, cached, done: doneNow, failed: failedNow, running, queued: Math.max(0, left - running.length), retrying: delayed.size,
          // BullMQ counts every worker of this queue name on the server; ours are those on our database
          workersConnected: (await queue.getWorkers()).filter((w) => Number((w as { db?: string }).db ?? conn.db) === conn.db).length, perWorker, elapsedS, recent: [...recent],
          etaS: doneNow + failedNow > 0 && left > 0 ? (elapsedS / (doneNow + failedNow)) * left : undefined,
          final: left === 0 ? 'finished' : undefined,
        };
      };
      if (pending.length === 0) {
        display.show(await status(), true);
        break;
      }
      if (stopRequested()) {
        display.show({ ...(await status()), final: 'interrupted' }, true);
        throw new GridInterrupted(cached + doneNow, runs.length);
      }
      display.show(await status());
      await sleep(q.pollMs);
      const [doneSet, failSet] = [await inSet('completed', pending), await inSet('failed', pending)];
      for (const id of [...doneSet, ...failSet]) {
        const f = await readFinal(id, false);
        if (f) settle(id, f);
      }
      // Nothing lost: a job removed behind our back (by hand, by another tool) is queued again.
      if (++tick % 10 === 0) {
        const still = pending.filter((id) => !finals.has(id));
        const gone: string[] = [];
        for (const part of chunks(still)) {
          const pipe = client.pipeline();
          for (const id of part) pipe.exists(queue.toKey(id));
          const res = (await pipe.exec()) ?? [];
          part.forEach((id, i) => { if (res[i]?.[1] === 0) gone.push(id); });
        }
        if (gone.length) await add(gone);
      }
    }
    return gridTable(keys, runs.map((r) => rows.get(r.index)!));
  } finally {
    await queue.close();
    await client.quit().catch(() => client.disconnect());
  }

  /** After a failure that stops the grid: remove our runs no worker has started (running ones finish and are stored). */
  async function withdraw(pending: string[]): Promise<void> {
    const done = await inSet('completed', pending);
    for (const id of pending) if (!done.has(id)) await queue.remove(id).catch(() => 0);
  }
}

function gridRowLabel(v: unknown): string {
  return Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

function progressText(p: unknown): string | undefined {
  if (typeof p === 'number' && Number.isFinite(p)) return `${(100 * Math.min(1, Math.max(0, p))).toFixed(0)}%`;
  if (p && typeof p === 'object') return Object.entries(p).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`).join(' ');
  return undefined;
}
