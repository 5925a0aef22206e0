/**
 * A grid's jobs in Redis, as the notebook side sees them: add them, find
 * which have finished (one ZMSCORE per 1,000 ids rather than a read per job,
 * so following 10,000 runs stays cheap), read results, and withdraw them.
 */
import type { Job, Queue } from 'bullmq';
import { bullConnection, loadBullMQ, redisClient, type RedisClient } from './connect.js';
import { makeJobData, QUEUE_NAME, type JobResult } from './job.js';
import type { Recipe } from './recipe.js';
import type { RedisConnection } from './redis-url.js';

export type Final =
  | { ok: true; result: JobResult; cached: boolean }
  | { ok: false; error: string; worker?: string; seconds: number; attempts: number };

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
  ) {}

  static async open(conn: RedisConnection, o: { grid: string; recipe: Recipe; key: string; total: number; attempts: number; backoffMs: number; specs: Map<string, JobSpec> }): Promise<GridJobs> {
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
      return { name: o.grid, data: makeJobData(o.grid, o.recipe, s.config, s.index, o.total, o.key), opts: { ...jobOpts, jobId: id } };
    });
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
      const scores = await this.client.zmscore(this.queue.toKey(set), ...part);
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
      const res = (await pipe.exec()) ?? [];
      part.forEach((id, i) => { if (res[i]?.[1] === 1) out.add(id); });
    }
    return out;
  }

  /** the result or final failure of a job, or undefined while it may still run */
  async final(id: string, cached: boolean): Promise<Final | undefined> {
    const job = await this.queue.getJob(id);
    if (!job) return undefined;
    const state = await job.getState();
    if (state === 'completed') return { ok: true, result: job.returnvalue as JobResult, cached };
    if (state === 'failed') {
      const seconds = job.finishedOn && job.processedOn ? Math.max(0, job.finishedOn - job.processedOn) / 1000 : 0;
      return { ok: false, error: job.failedReason || 'failed (no reason recorded)', worker: job.processedBy, seconds, attempts: job.attemptsMade };
    }
    return undefined;
  }

  async remove(id: string): Promise<void> {
    await this.queue.remove(id);
  }

  /** Remove the jobs among `ids` that no worker holds (BullMQ refuses to remove a locked one) and that have not finished. */
  async withdraw(ids: string[]): Promise<void> {
    const done = await this.inSet('completed', ids);
    for (const id of ids) if (!done.has(id)) await this.queue.remove(id).catch(() => 0);
  }

  /** the running jobs (of every grid: the caller picks its own) */
  async active(): Promise<Job[]> {
    return this.queue.getActive();
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
