/**
 * The queue's own cost: N trivial jobs (a recipe that returns at once) over W
 * local worker processes on one redis-server, through runGrid exactly as a
 * notebook calls it. Prints jobs/s, the time a job spends in a worker, Redis
 * CPU and memory per job, and the client's cost to follow 10,000 jobs; then
 * what that means for a grid of 10,000 runs on 100 machines.
 *
 *   node dist/bench/queue-load.js [--jobs 1000] [--workers 20] [--out bench/results/x.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { runGrid } from '../src/train/grid.js';
import { QUEUE_NAME } from '../src/train/queue/job.js';
import { startRedis } from '../test/queue/redis.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const JOBS = Number(arg('jobs', '1000'));
const WORKERS = Number(arg('workers', '20'));
const OUT = arg('out', '');
const KEY = 'queue-load-bench-key-0123456789';
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };
const say = (s: string) => process.stdout.write(`${s}\n`);

type Redis = { info(section: string): Promise<string>; zmscore(k: string, ...m: string[]): Promise<unknown[]>; quit(): Promise<unknown>; connect(): Promise<void> };
const infoNum = (info: string, field: string) => Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info)![1]);

async function main(): Promise<void> {
  const redis = await startRedis({ password: 'bench' });
  const Redis = createRequire(import.meta.resolve('bullmq'))('ioredis') as new (o: object) => Redis;
  const r = new Redis({ host: '127.0.0.1', port: redis.port, password: 'bench', lazyConnect: true });
  await r.connect();
  const procs: ChildProcess[] = [];
  try {
    const load0 = os.loadavg()[0]!;
    let t = performance.now();
    let ready = 0;
    const allReady = new Promise<void>((resolve, reject) => {
      for (let i = 0; i < WORKERS; i++) {
        const p = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'train', 'queue', 'worker-main.js'), '--queue', redis.workerUrl, '--backend', 'cpu', '--name', `w${i}`], {
          env: { ...process.env, ...redis.workerEnv, SHARELORA_QUEUE_KEY: KEY }, stdio: ['ignore', 'ignore', 'pipe'],
        });
        let log = '';
        p.stderr!.on('data', (b) => {
          log += b;
          if (/ ready on /.test(b.toString()) && ++ready === WORKERS) resolve();
        });
        p.on('exit', (code) => { if (code !== 0 && code !== null) reject(new Error(`worker ${i} exited with ${code}:\n${log}`)); });
        procs.push(p);
      }
    });
    await allReady;
    const startupS = (performance.now() - t) / 1000;
    say(`${WORKERS} workers (each a worker and a runner process) ready in ${startupS.toFixed(1)} s; load average ${load0.toFixed(1)} on ${os.cpus().length} cores`);

    const info0 = await r.info('all');
    t = performance.now();
    const table = await runGrid({ i: Array.from({ length: JOBS }, (_, i) => i) }, join(ROOT, 'bench', 'fixtures', 'trivial-recipe.mjs'),
      { queue: { url: redis.url, key: KEY, pollMs: 100 }, name: 'load', log: false });
    const wallS = (performance.now() - t) / 1000;
    const info1 = await r.info('all');
    const y = table.array('y') as number[];
    if (table.numRows() !== JOBS || y.some((v, i) => v !== 2 * i)) throw new Error('wrong results');

    // where the time went, from BullMQ's own timestamps
    const q = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port, password: 'bench' } });
    const jobs = await q.getJobs(['completed'], 0, -1);
    await q.close();
    const inWorker = jobs.map((j) => j.finishedOn! - j.processedOn!);
    const inRunner = jobs.map((j) => (j.returnvalue as { seconds: number }).seconds * 1000);
    const submitToDone = jobs.map((j) => j.finishedOn! - j.timestamp);
    const redisCpuS = infoNum(info1, 'used_cpu_user') + infoNum(info1, 'used_cpu_sys') - infoNum(info0, 'used_cpu_user') - infoNum(info0, 'used_cpu_sys');
    const memPerJob = (infoNum(info1, 'used_memory') - infoNum(info0, 'used_memory')) / JOBS;

    // the client follows a grid by asking which of its pending ids finished: one ZMSCORE per 1,000 ids per set
    const ids = Array.from({ length: 10_000 }, (_, i) => `load.${i.toString(16).padStart(32, '0')}`);
    const ticks: number[] = [];
    for (let k = 0; k < 20; k++) {
      const t1 = performance.now();
      for (const set of ['completed', 'failed', 'delayed']) for (let i = 0; i < ids.length; i += 1000) await r.zmscore(`bull:${QUEUE_NAME}:${set}`, ...ids.slice(i, i + 1000));
      ticks.push(performance.now() - t1);
    }

    const jobsPerS = JOBS / wallS;
    const res = {
      date: new Date().toISOString(), host: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, loadAverage1m: load0, node: process.version },
      jobs: JOBS, workers: WORKERS, workerStartupS: startupS, wallS, jobsPerS,
      workerSecondsPerJobMs: (WORKERS * wallS * 1000) / JOBS,
      inWorkerMs: { median: median(inWorker), p95: pct(inWorker, 0.95) },
      inRunnerMs: { median: median(inRunner), p95: pct(inRunner, 0.95) },
      submitToDoneMs: { median: median(submitToDone), p95: pct(submitToDone, 0.95) },
      redisCpuMsPerJob: (redisCpuS * 1000) / JOBS, redisBytesPerJob: memPerJob,
      clientTick10kMs: { median: median(ticks), p95: pct(ticks, 0.95) },
    };
    say(`${JOBS} jobs in ${wallS.toFixed(1)} s: ${jobsPerS.toFixed(0)} jobs/s over ${WORKERS} workers`);
    say(`per job: ${res.workerSecondsPerJobMs.toFixed(0)} ms of a worker's wall time (${WORKERS} workers share ${os.cpus().length} cores); in a worker from taking it to storing its result: median ${res.inWorkerMs.median} ms (p95 ${res.inWorkerMs.p95}); of that, the round trip to the runner process: median ${res.inRunnerMs.median.toFixed(1)} ms`);
    say(`Redis: ${res.redisCpuMsPerJob.toFixed(2)} ms of CPU and ${(memPerJob / 1024).toFixed(1)} KiB of memory per job (the recipe's source travels in each job)`);
    say(`client: one look at 10,000 pending jobs (3 sets) takes median ${res.clientTick10kMs.median.toFixed(1)} ms (p95 ${res.clientTick10kMs.p95.toFixed(1)})`);
    if (OUT) {
      mkdirSync(dirname(OUT), { recursive: true });
      writeFileSync(OUT, `${JSON.stringify(res, null, 2)}\n`);
      say(`wrote ${OUT}`);
    }
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((res) => p.once('exit', res)))));
    await r.quit();
    await redis.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
