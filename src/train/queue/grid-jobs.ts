/**
 * A grid's jobs in Redis, as the notebook side sees them: add them, find
 * which have finished (one ZMSCORE per 1,000 ids rather than a read per job,
 * so following 10,000 runs stays cheap), read results, and withdraw them.
 *
 * Redis is shared: other grids, other tools and anyone with its password
 * write to it. So what is read back is read raw (BullMQ's own readers parse
 * every job they list and throw on one that is not JSON) and only for this
 * grid's ids, and every value is checked: a result counts only when it is
 * signed with the grid's key for that job.
 */
import type { Queue } from 'bullmq';
import { clip } from '../grid-rows.js';
import { bullConnection, loadBullMQ, redisClient, type RedisClient } from './connect.js';
import { checkJob, checkResult, makeJobData, QUEUE_NAME, type JobResult } from './job.js';
import type { Recipe } from './recipe.js';
import type { RedisConnection } from './redis-url.js';

export type Final =
  | { ok: true; result: JobResult; cached: boolean }
  /** refused: a result that was stored but not accepted (unsigned, forged); the next call runs it again */
  | { ok: false; error: string; worker?: string; seconds: number; attempts: number; refused?: boolean };

/** A running job as its progress says (written by the worker that holds it, but checked like anything from Redis). */
export interface ActiveJob { id: string; worker?: string; startedAt?: number; attempt: number; p: unknown }

const MAX_TEXT = 10_000;

/**
 * Redis did not answer (refused, reset, closed, out of retries). The grid's
 * loop waits this out: the runs go on on the workers meanwhile.
 */
export class RedisUnreachable extends Error {
  constructor(cause: Error) {
    super(cause.message);
    this.name = 'RedisUnreachable';
  }
}

const CONNECTION_TROUBLE = /MaxRetriesPerRequest|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|Stream isn't writeable|LOADING/;

/** `f()`, with connection trouble raised as RedisUnreachable (and anything else as itself). */
async function reach<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof Error && (e.name === 'MaxRetriesPerRequestError' || CONNECTION_TROUBLE.test(e.message))) throw new RedisUnreachable(e);
    throw e;
  }
}
const parse = (s: string | null | undefined): { ok: true; value: unknown } | { ok: false } => {
  if (typeof s !== 'string') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(s) };
  } catch {
    return { ok: false };
  }
};
const count = (s: string | null | undefined): number => (s && /^\d{1,15}$/.test(s) ? Number(s) : 0);

export interface JobSpec {
  config: Record<string, unknown>;
  index: number;
}

const CHUNK = 1000;

function chunks<T>(xs: T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export class GridJobs {
  private constructor(
    private readonly queue: Queue,
    private readonly client: RedisClient,
    private readonly conn: RedisConnection,
    private readonly make: (id: string) => { name: string; data: unknown; opts: Record<string, unknown> },
    private readonly key: string,
  ) {}

  static async open(conn: RedisConnection, o: { grid: string; recipe: Recipe; key: string; total: number; attempts: number; backoffMs: number; timeoutMs?: number; specs: Map<string, JobSpec> }): Promise<GridJobs> {
    const { Queue } = await loadBullMQ();
    const queue = new Queue(QUEUE_NAME, { connection: bullConnection(conn) });
    let lastError = '';
    queue.on('error', (e: Error) => {
      // ioredis reports every reconnect attempt; one line per distinct error is enough
      if (e.message !== lastError) process.stderr.write(`runGrid queue: ${e.message}\n`);
      lastError = e.message;
    });
    const client = await redisClient(conn, false);
    client.on('error', () => {}); // the queue's handler above reports connection trouble
    const jobOpts = { attempts: o.attempts, backoff: { type: 'exponential', delay: o.backoffMs }, removeOnComplete: false, removeOnFail: false };
    const jobs = new GridJobs(queue, client, conn, (id) => {
      const s = o.specs.get(id)!;
      return { name: o.grid, data: makeJobData(o.grid, o.recipe, s.config, s.index, o.total, o.key, { timeoutMs: o.timeoutMs ?? null }), opts: { ...jobOpts, jobId: id } };
    }, o.key);
    try {
      await client.connect();
    } catch (e) {
      await jobs.close();
      throw e;
    }
    return jobs;
  }

  async add(ids: string[]): Promise<void> {
    for (const part of chunks(ids, 200)) await this.queue.addBulk(part.map(this.make) as Parameters<Queue['addBulk']>[0]);
  }

  /** which of `ids` are in one of BullMQ's sorted sets ('completed', 'failed', 'delayed') */
  async inSet(set: 'completed' | 'failed' | 'delayed', ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(ids)) {
      const scores = await reach(() => this.client.zmscore(this.queue.toKey(set), ...part));
      part.forEach((id, i) => { if (scores[i] !== null) out.add(id); });
    }
    return out;
  }

  /** which of `ids` exist as jobs at all */
  async existing(ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(ids)) {
      const pipe = this.client.pipeline();
      for (const id of part) pipe.exists(this.queue.toKey(id));
      const res = (await reach(() => pipe.exec())) ?? [];
      part.forEach((id, i) => { if (res[i]?.[1] === 1) out.add(id); });
    }
    return out;
  }

  /**
   * The result or final failure of a job that is in `state`. A completed job
   * counts only with a result signed for it with this grid's key; any other
   * is a failure marked `refused`.
   */
  async final(id: string, state: 'completed' | 'failed', cached: boolean): Promise<Final> {
    // BullMQ's field names (Job.fromJSON): pb processedBy, atm attemptsMade (attemptsMade in older jobs)
    const [data, returnvalue, failedReason, processedBy, atm, attemptsMade, finishedOn, processedOn] = await reach(() => this.client.hmget(this.queue.toKey(id),
      'data', 'returnvalue', 'failedReason', 'pb', 'atm', 'attemptsMade', 'finishedOn', 'processedOn'));
    const worker = typeof processedBy === 'string' ? clip(processedBy, 200) : undefined;
    const seconds = Math.max(0, count(finishedOn) - count(processedOn)) / 1000;
    const attempts = count(atm ?? attemptsMade);
    if (state === 'failed') return { ok: false, error: failedReason ? clip(failedReason, MAX_TEXT) : 'failed (no reason recorded)', worker, seconds, attempts };
    const refused = (error: string): Final => ({ ok: false, error, worker, seconds, attempts, refused: true });
    const d = parse(data);
    // its signature, not its age: a result stays good after the job's signature has expired
    const job = d.ok ? checkJob(d.value, this.key, id, 0) : undefined;
    if (!job?.ok) return refused(`result refused: the job stored under this run's id is not one signed with this grid's key (${job ? job.reason : 'its data is not JSON'})`);
    const r = parse(returnvalue);
    if (!r.ok) return refused('result refused: the stored result is not JSON');
    const c = checkResult(r.value, id, job.data.sig, this.key);
    return c.ok ? { ok: true, result: { ...c.result, worker: clip(c.result.worker, 200) }, cached } : refused(c.reason);
  }

  async remove(id: string): Promise<void> {
    await this.queue.remove(id);
  }

  /** Remove the jobs among `ids` that no worker holds (BullMQ refuses to remove a locked one) and that have not finished. */
  async withdraw(ids: string[]): Promise<void> {
    const done = await this.inSet('completed', ids);
    for (const id of ids) if (!done.has(id)) await this.queue.remove(id).catch(() => 0);
  }

  /** which of `ids` are running, with the progress their workers report (other grids' jobs are never read) */
  async active(ids: ReadonlySet<string>): Promise<ActiveJob[]> {
    const running = (await reach(() => this.client.lrange(this.queue.toKey('active'), 0, -1))).filter((id) => ids.has(id));
    return Promise.all(running.map(async (id) => {
      const [progress, atm] = await reach(() => this.client.hmget(this.queue.toKey(id), 'progress', 'atm'));
      const p = parse(progress);
      const v = (p.ok && p.value !== null && typeof p.value === 'object' ? p.value : {}) as Record<string, unknown>;
      return {
        id,
        worker: typeof v.worker === 'string' ? clip(v.worker, 200) : undefined,
        startedAt: typeof v.startedAt === 'number' && Number.isFinite(v.startedAt) ? v.startedAt : undefined,
        attempt: Number.isSafeInteger(v.attempt) && (v.attempt as number) > 0 ? v.attempt as number : count(atm) + 1,
        p: v.p,
      };
    }));
  }

  /** Workers listening now. BullMQ counts every worker of the queue name on the server; ours are those on our database. */
  async workersConnected(): Promise<number> {
    return (await this.queue.getWorkers()).filter((w) => Number((w as { db?: string }).db ?? this.conn.db) === this.conn.db).length;
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
