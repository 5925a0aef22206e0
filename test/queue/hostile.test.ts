/**
 * A grid that trusts nothing in Redis, and workers that cannot be tricked,
 * hung or left unstoppable (issue 24). The driver faces another grid's
 * malformed entry and a plain BullMQ worker without the key (null and forged
 * results) in a child process with a deadline; real workers face a stale key,
 * recipes that never return, leave throwing timers behind or return reserved
 * names, and a Redis that stops under them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Worker } from 'bullmq';
import { runGrid } from '../../src/train/grid.js';
import { QUEUE_NAME } from '../../src/train/queue/job.js';
import { ROOT } from '../helpers.js';
import { startRedis, type TestRedis } from './redis.js';

const KEY = 'hostile-test-key-5f2c9e1ab7d04863';
const PASSWORD = 'hostile SecretPW@x';
const HOSTILE = join(ROOT, 'test', 'fixtures', 'queue', 'hostile-recipe.mjs');
const WORKER_MAIN = join(ROOT, 'dist', 'src', 'train', 'queue', 'worker-main.js');

interface W { proc: ChildProcess; log: string; exited: Promise<number | null> }

function startWorker(redis: TestRedis, name: string, key: string): W {
  const proc = spawn(process.execPath, [WORKER_MAIN, '--queue', redis.workerUrl, '--backend', 'cpu', '--name', name, '--grace', '0'], {
    env: { ...process.env, ...redis.workerEnv, SHARELORA_QUEUE_KEY: key }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w: W = { proc, log: '', exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
  proc.stdout!.on('data', (b) => { w.log += b; });
  proc.stderr!.on('data', (b) => { w.log += b; });
  return w;
}

async function until(what: string, ok: () => boolean, ms = 60_000, logs: () => string = () => ''): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const columns = (t: { columnNames(): string[]; array(c: string): ArrayLike<unknown> }) => Object.fromEntries(t.columnNames().map((c) => [c, Array.from(t.array(c))]));

describe('a queued grid among hostile entries, workers and recipes', { timeout: 240_000 }, () => {
  let redis: TestRedis;
  const workers: W[] = [];
  const logs = () => workers.map((w) => w.log).join('\n---\n');

  before(async () => {
    redis = await startRedis({ password: PASSWORD });
  });
  after(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await redis?.stop();
  });

  it('the driver survives another grid\'s non-JSON job and refuses a keyless worker\'s null and forged results, recording why', { timeout: 60_000 }, async () => {
    // another grid's running job whose data is not JSON (BullMQ's own listing throws SyntaxError on it)
    const Redis = createRequire(import.meta.resolve('bullmq'))('ioredis');
    const raw = new Redis({ host: '127.0.0.1', port: redis.port, password: PASSWORD });
    await raw.hset(`bull:${QUEUE_NAME}:junk.1`, 'data', '{not json', 'progress', '{also not', 'timestamp', '1');
    await raw.lpush(`bull:${QUEUE_NAME}:active`, 'junk.1');
    await raw.quit();
    // a plain BullMQ worker without the key: null for the first run, a made-up result for the others
    const plain = new Worker(QUEUE_NAME, async (job) => (job.data.index === 0 ? null : { metrics: { y: 0.999 }, worker: 'wA', seconds: 1, ...(job.data.index === 2 && { sig: 'f'.repeat(64) }) }),
      { connection: { host: '127.0.0.1', port: redis.port, password: PASSWORD } });
    try {
      const script = `const { runGrid } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'train', 'grid.js'))});
        const t = await runGrid({ x: [1, 2, 3] }, ${JSON.stringify(HOSTILE)}, { queue: { url: ${JSON.stringify(redis.url)}, key: ${JSON.stringify(KEY)}, pollMs: 100, attempts: 1 }, name: 'keyless', onError: 'record', log: false });
        console.log(JSON.stringify(Object.fromEntries(t.columnNames().map((c) => [c, Array.from(t.array(c))]))));`;
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 45_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
      });
      const t = JSON.parse(out.trim().split('\n').at(-1)!);
      assert.ok(!('y' in t), `no forged number reaches the table: ${out}`);
      assert.deepEqual(t.x, [1, 2, 3]);
      assert.match(t.error[0], /^result refused: not the result of a sharelora worker/);
      assert.match(t.error[1], /^result refused: not signed/);
      assert.match(t.error[2], /^result refused: its signature does not match/);
    } finally {
      await plain.close();
    }
  });

  it('a worker with a stale key leaves the jobs to one that holds the key; every row succeeds', async () => {
    const stale = startWorker(redis, 'stale', 'an-old-key-3c81d0f7a9e2b465');
    workers.push(stale);
    await until('the stale worker', () => / ready on /.test(stale.log), 60_000, logs);
    const grid = runGrid({ x: [1, 2, 3] }, HOSTILE, { queue: { url: redis.url, key: KEY, pollMs: 100, attempts: 1 }, name: 'stale', log: false, onError: 'record' });
    await until('the stale worker to leave a job', () => /left job stale\.[0-9a-f]+ for another worker: the job says it was signed with key id/.test(stale.log), 30_000, logs);
    const good = startWorker(redis, 'good', KEY);
    workers.push(good);
    const t = columns(await grid);
    assert.deepEqual(t.y, [1, 2, 3], logs());
    assert.ok(!('error' in t), 'no run failed');
    stale.proc.kill('SIGTERM');
    assert.equal(await stale.exited, 0);
  });

  it('the password is never in a worker\'s argv, and the key and password never in its runner\'s environment', async () => {
    const good = workers.find((w) => w.log.includes('worker good ready'))!;
    assert.ok(good, logs());
    const cmdline = readFileSync(`/proc/${good.proc.pid}/cmdline`, 'utf8');
    assert.ok(!cmdline.includes('SecretPW') && !cmdline.includes(KEY), cmdline);
    assert.ok(!good.log.includes('SecretPW'), 'nor in its log');
    const t = columns(await runGrid({ mode: ['env'] }, HOSTILE, { queue: { url: redis.url, key: KEY, pollMs: 100 }, name: 'env', log: false }));
    assert.deepEqual([t.key, t.auth], [[0], [0]]);
    const withPassword = spawn(process.execPath, [WORKER_MAIN, '--queue', redis.url, '--backend', 'cpu'], { env: { ...process.env, SHARELORA_QUEUE_KEY: KEY }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    withPassword.stderr!.on('data', (b) => { err += b; });
    assert.equal(await new Promise((r) => withPassword.on('exit', r)), 2);
    assert.match(err, /the --queue URL holds a password \(redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0\), which every user of this machine can read in the process list/);
    assert.ok(!err.includes('SecretPW'));
  });

  it('a run that never returns times out; a leftover throwing timer does not kill the next run; reserved metric names are refused', async () => {
    const t = columns(await runGrid({ mode: ['leave-timer', 'slow', 'own-timer', 'reserved', 'sleep'] }, HOSTILE,
      { queue: { url: redis.url, key: KEY, pollMs: 100, attempts: 1 }, name: 'misbehaving', log: false, onError: 'record', timeoutMs: 4000 }));
    assert.deepEqual(t.y, [1, 2, null, null, null], logs());
    const error = t.error as (string | null)[];
    assert.equal(error[1], null, 'the run after the one that left a timer is not blamed for it');
    assert.match(error[2]!, /^own timer threw$/);
    assert.match(error[3]!, /recipe hostile-recipe\.mjs: metric "error" has the name of a column every grid table has/);
    assert.match(error[4]!, /^the run exceeded its time limit \(runGrid timeoutMs = 4000 ms\) and was stopped on worker good$/);
    assert.ok((t.seconds as number[])[4]! < 20);
    assert.match(logs(), /an error was thrown by run misbehaving\.[0-9a-f]+, which had already finished \(a timer or promise it left behind\): leftover timer of an earlier run; run misbehaving\.[0-9a-f]+ goes on/);
  });

  it('a grid waits out Redis being down for 15 s, saying so, and finishes every run', async () => {
    const own = await startRedis({ persist: true });
    const w = startWorker(own, 'survivor', KEY);
    workers.push(w);
    try {
      await until('the survivor worker', () => / ready on /.test(w.log), 60_000, () => w.log);
      const lines: string[] = [];
      const grid = runGrid({ mode: ['slow'], x: [1, 2, 3] }, HOSTILE, { queue: { url: own.url, key: KEY, pollMs: 200 }, name: 'outage', log: (l) => lines.push(l) });
      await until('the first run to finish', () => lines.some((l) => l.startsWith('[1/3]')), 30_000, () => w.log);
      await own.down();
      await new Promise((r) => setTimeout(r, 15_000));
      await own.up();
      const t = columns(await grid);
      assert.deepEqual(t.y, [2, 2, 2], `${lines.join('\n')}\n${w.log}`);
      assert.ok(lines.some((l) => /^grid outage: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 does not answer \(.*\); waiting for it — the workers keep going$/.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => /^grid outage: Redis answers again after \d+ s$/.test(l)), lines.join('\n'));
    } finally {
      w.proc.kill('SIGTERM');
      await w.exited;
      await own.stop();
    }
  });

  it('a worker whose Redis has stopped still ends on SIGTERM', async () => {
    const own = await startRedis();
    const w = startWorker(own, 'orphan', KEY);
    workers.push(w);
    try {
      await until('the orphan worker', () => / ready on /.test(w.log), 60_000, () => w.log);
    } finally {
      await own.stop();
    }
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    w.proc.kill('SIGTERM');
    const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    assert.notEqual(code, 'still running', w.log);
    assert.ok(Date.now() - t0 < 15_000);
  });
});
