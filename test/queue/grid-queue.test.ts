/**
 * runGrid over a real redis-server and real worker processes: a 12-run grid
 * of real (tiny) training runs across 3 workers, one SIGKILLed mid-run; the
 * same table as in-process; stored rows on a second call with no training;
 * forged jobs refused and not run; a throwing recipe retried, then recorded;
 * SIGTERM handing a running job to another worker.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { runGrid } from '../../src/train/grid.js';
import { useBackend } from '../../src/backend/index.js';
import { makeJobData, QUEUE_NAME } from '../../src/train/queue/job.js';
import { readRecipe } from '../../src/train/queue/recipe.js';
import { ROOT } from '../helpers.js';
import { startRedis, type TestRedis } from './redis.js';
import { ofType, TestKernel } from '../kernel/client.js';

const KEY = 'integration-test-key-0123456789abcdef';
const PASSWORD = 'p@ss word';
const TINY = join(ROOT, 'test', 'fixtures', 'queue', 'tiny-recipe.mjs');
const FLAKY = join(ROOT, 'test', 'fixtures', 'queue', 'flaky-recipe.mjs');
const SPACE = { r: [2, 4], share: ['none', 'A', 'B'], seed: [0, 1] };

interface Worker { proc: ChildProcess; log: string; exited: Promise<number | null> }
/** written by the recipes: worker is ctx.worker (w0, w1, w2), pid the runner process's */
interface RunEvent { ev: 'start' | 'end'; jobId: string; worker: string; pid: number; attempt: number }

describe('runGrid on a Redis queue with worker processes', { timeout: 240_000 }, () => {
  let redis: TestRedis;
  let dir: string;
  let runsFile: string;
  const workers: Worker[] = [];
  const events = (): RunEvent[] => (existsSync(runsFile) ? readFileSync(runsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  const queue = () => ({ url: redis.url, key: KEY, pollMs: 200 });
  const until = async (what: string, ok: () => boolean, ms = 60_000) => {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${workers.map((w, i) => `--- worker ${i}\n${w.log}`).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let kernel: Promise<TestKernel>;
  let kernelDir: string;

  before(async () => {
    // started now, used last: its start-up overlaps the runs before it
    kernelDir = mkdtempSync(join(tmpdir(), 'sharelora-queue-kernel-'));
    kernel = TestKernel.start({ cwd: kernelDir });
    kernel.catch(() => {});
    await useBackend('cpu');
    redis = await startRedis({ password: PASSWORD });
    dir = mkdtempSync(join(tmpdir(), 'sharelora-queue-test-'));
    runsFile = join(dir, 'runs.jsonl');
    for (let i = 0; i < 3; i++) {
      const proc = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'train', 'queue', 'worker-main.js'), '--queue', redis.workerUrl, '--backend', 'cpu',
        '--name', `w${i}`, '--lock-duration', '3000', '--stalled-interval', '1000', '--grace', '0'], {
        env: { ...process.env, ...redis.workerEnv, SHARELORA_QUEUE_KEY: KEY, SHARELORA_TEST_RUNS: runsFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const w: Worker = { proc, log: '', exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
      proc.stdout!.on('data', (b) => { w.log += b; });
      proc.stderr!.on('data', (b) => { w.log += b; });
      workers.push(w);
    }
  });

  after(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
    const codes = await Promise.all(workers.map((w) => w.exited));
    await redis?.stop();
    rmSync(kernelDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    // killed: w0 by SIGKILL; the others stop cleanly on SIGTERM
    assert.deepEqual(codes.slice(1), [0, 0], workers.map((w) => w.log).join('\n'));
  });

  let reference: Record<string, unknown[]>;
  let queued: Record<string, unknown[]>;
  const columns = (t: { columnNames(): string[]; array(c: string): ArrayLike<unknown> }) => Object.fromEntries(t.columnNames().map((c) => [c, Array.from(t.array(c))]));

  it('runs the grid in-process (the reference)', async () => {
    reference = columns(await runGrid(SPACE, TINY, { log: false }));
    assert.equal(reference.r!.length, 12);
    assert.ok((reference.loss as number[]).every((l) => Number.isFinite(l) && l > 0 && l < 10), String(reference.loss));
    assert.equal(events().length, 0, 'the in-process run does not write to the workers\' file');
  });

  it('runs every configuration exactly once across 3 workers, one SIGKILLed mid-run, with the in-process metrics', async () => {
    await until('3 workers ready', () => workers.every((w) => /ready on redis:\/\/:\*\*\*@127\.0\.0\.1/.test(w.log)));
    assert.ok(!workers.some((w) => w.log.includes(PASSWORD)), 'the password is not logged');
    const lines: string[] = [];
    const grid = runGrid(SPACE, { module: TINY, export: 'run' }, { queue: queue(), name: 'ablation', log: (l) => lines.push(l) });
    const victim = workers[0]!;
    await until('a run started on w0', () => events().some((e) => e.ev === 'start' && e.worker === 'w0'));
    victim.proc.kill('SIGKILL');
    const killedJob = events().find((e) => e.ev === 'start' && e.worker === 'w0')!.jobId;
    const t = await grid;
    queued = columns(t);
    assert.deepEqual(Object.keys(queued), ['r', 'share', 'seed', 'loss', 'params', 'seconds']);
    const { seconds: _a, ...ref } = reference;
    const { seconds: _b, ...got } = queued;
    assert.deepEqual(got, ref, 'same configurations, in order, each once, with the same metrics as in-process');
    const ev = events();
    // (w0's runner may still finish the computation before it notices its worker is gone; nothing records it)
    assert.ok(ev.some((e) => e.jobId === killedJob && e.ev === 'end' && e.worker !== 'w0'), 'the killed run was run again, to the end, by another worker');
    const ends = new Map<string, number>();
    for (const e of ev) if (e.ev === 'end' && e.worker !== 'w0') ends.set(e.jobId, (ends.get(e.jobId) ?? 0) + 1);
    assert.equal(ends.size, 12);
    assert.ok([...ends.values()].every((n) => n === 1), `each run finished once on the live workers:\n${ev.map((e) => JSON.stringify(e)).join('\n')}\n${workers.map((w, i) => `--- worker ${i}\n${w.log}`).join('\n')}`);
    assert.equal(lines.length, 12);
    assert.ok(lines.every((l) => / on w[12]$/.test(l)), lines.join('\n'));
  });

  it('returns the stored rows on a second call, without training', async () => {
    const before = events().length;
    const lines: string[] = [];
    const t = columns(await runGrid(SPACE, TINY, { queue: queue(), name: 'ablation', log: (l) => lines.push(l) }));
    assert.deepEqual(t, queued, 'the same table, seconds included (they are stored)');
    assert.equal(events().length, before, 'no run started');
    assert.deepEqual(lines, ['grid ablation: 12 of 12 runs already finished (stored in Redis); 0 to go']);
  });

  it('refuses forged, unsigned and replayed jobs, leaves those of another key, and runs none of them', async () => {
    const marker = join(dir, 'forged-ran');
    const evil = join(dir, 'evil.mjs');
    writeFileSync(evil, `import { writeFileSync } from 'node:fs';\nexport async function run() { writeFileSync(${JSON.stringify(marker)}, 'ran'); return 1; }\n`);
    const recipe = readRecipe(evil);
    const signed = makeJobData('forged', readRecipe(TINY), { r: 2, share: 'A', seed: 0 }, 0, 1, KEY);
    const { sig: _, ...unsigned } = makeJobData('forged', recipe, { x: 1 }, 0, 1, KEY);
    const refused = {
      altered: { ...signed, recipe }, // the signature of a harmless run on evil code
      unsigned,
      replayed: { ...signed }, // a genuine job copied under another id
    };
    const otherKey = makeJobData('forged', recipe, { x: 1 }, 0, 1, 'an-attacker-key-not-the-real-one');
    const q = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port, password: PASSWORD } });
    try {
      for (const [id, data] of Object.entries(refused)) await q.add('forged', data, { jobId: `forged-${id}`, attempts: 3 });
      await q.add('forged', otherKey, { jobId: 'forged-otherKey', attempts: 3 });
      const states = async () => Promise.all(Object.keys(refused).map(async (id) => (await q.getJob(`forged-${id}`))!.getState()));
      const t0 = Date.now();
      while ((await states()).some((s) => s !== 'failed')) {
        if (Date.now() - t0 > 30_000) throw new Error(`forged jobs not refused: ${await states()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const jobs = await Promise.all(Object.keys(refused).map(async (id) => (await q.getJob(`forged-${id}`))!));
      assert.match(jobs[0]!.failedReason, /^refused by worker w[12]: signature check failed: the job was altered after it was signed \(or forged\)$/);
      assert.match(jobs[1]!.failedReason, /^refused by worker w[12]: the job is not signed/);
      assert.match(jobs[2]!.failedReason, /^refused by worker w[12]: signature check failed: the job was signed as "forged\.[0-9a-f]{32}", not for this id/);
      assert.deepEqual(jobs.map((j) => j.attemptsMade), [1, 1, 1], 'a refusal is not retried');
      // a key these workers lack: not failed for everyone, left for a worker that holds it
      await until('a worker to leave the other key\'s job', () => workers.some((w) => /left job forged-otherKey for another worker: the job says it was signed with key id "[0-9a-f]{12}"/.test(w.log)));
      const other = (await q.getJob('forged-otherKey'))!;
      assert.ok(['waiting', 'delayed', 'active'].includes(await other.getState()), await other.getState());
      assert.equal(other.attemptsMade, 0);
      await q.remove('forged-otherKey').catch(() => 0);
    } finally {
      await q.close();
    }
    assert.ok(!existsSync(marker), 'the forged code did not run');
    assert.ok(!events().some((e) => e.jobId.startsWith('forged')), 'no forged run started');
  });

  it('retries a recipe that throws with back-off, then records its error (or throws it)', async () => {
    const t = await runGrid({ x: [1, 2, 3] }, FLAKY, { queue: { ...queue(), attempts: 3, backoffMs: 50 }, name: 'flaky', onError: 'record', log: false });
    assert.deepEqual(t.array('y'), [10, null, 30]);
    assert.deepEqual(t.array('error'), [null, 'x=2 is broken (attempt 3)', null]);
    const tries = () => events().filter((e) => e.ev === 'start' && e.jobId.startsWith('flaky.')).map((e) => e.attempt);
    assert.deepEqual(tries().sort(), [1, 1, 1, 2, 3]);
    // a failed run is tried again on the next call; onError 'throw' then stops with its error
    await assert.rejects(runGrid({ x: [1, 2, 3] }, FLAKY, { queue: { ...queue(), attempts: 2, backoffMs: 50 }, name: 'flaky', log: false }),
      /^Error: x=2 is broken \(attempt 2\) \(run \[2\/3\] x=2 of grid flaky, on w[12] after 2 tries; pass onError: 'record' to keep going\)$/);
    assert.deepEqual(tries().sort(), [1, 1, 1, 1, 2, 2, 3], 'x=1 and x=3 came from storage; x=2 ran twice more');
  });

  it('says why it cannot reach Redis', async () => {
    await assert.rejects(runGrid({ x: [1] }, FLAKY, { queue: { url: redis.url.replace(encodeURIComponent(PASSWORD), 'wrong'), key: KEY }, log: false }),
      /cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: WRONGPASS.*check the user and password/);
    await assert.rejects(runGrid({ x: [1] }, FLAKY, { queue: { url: `redis://127.0.0.1:${redis.port}/0`, key: KEY }, log: false }), /NOAUTH.*check the user and password/);
  });

  it('shows the grid live in a notebook, one output updated in place', async () => {
    const k = await kernel;
    try {
      const r = await k.execute(`const t = await runGrid({ x: [4, 5, 6, 7] }, ${JSON.stringify(FLAKY)}, { queue: ${JSON.stringify({ ...queue(), pollMs: 100 })}, name: 'notebook' });\nt.array('y')`);
      assert.equal((r.reply.content as { status: string }).status, 'ok', JSON.stringify(r.reply.content));
      type Out = { data: Record<string, string>; transient: { display_id: string } };
      const shown = ofType(r.outputs, 'display_data').map((m) => m.content as Out).filter((c) => /sharelora-grid/.test(c.data['text/html'] ?? ''));
      assert.equal(shown.length, 1, 'one live output');
      const updates = ofType(r.outputs, 'update_display_data').map((m) => m.content as Out).filter((c) => c.transient.display_id === shown[0]!.transient.display_id);
      assert.ok(updates.length >= 1);
      const last = updates.at(-1)!;
      assert.match(last.data['text/plain']!, /^grid notebook: 4\/4 done · 0 running · 0 queued · 0 failed · \d workers? connected · 0:\d\d elapsed · finished$/);
      assert.match(last.data['text/html']!, /<th>worker<\/th>.*<td>w[12]<\/td>/s);
      assert.match(last.data['text/html']!, /\[4\/4\] x=7 → y=70 \(\d+\.\d s\) on w[12]/);
      assert.equal(ofType(r.outputs, 'stream').length, 0, 'no per-run lines in a notebook');
      assert.deepEqual(JSON.parse((ofType(r.outputs, 'execute_result')[0]!.content as Out).data['text/plain']!), [40, 50, 60, 70]);

      // database 1 has no workers: the grid waits, says so, and an interrupt ends the wait with the runs left queued
      const idle = { ...queue(), url: redis.url.replace(/\/0$/, '/1'), pollMs: 100 };
      const { msgId, done } = k.begin('shell', k.executeMessage(`await runGrid({ x: [8, 9] }, ${JSON.stringify(FLAKY)}, { queue: ${JSON.stringify(idle)}, name: 'waiting' })`));
      await until('the waiting grid to show', () => ofType(k.outputsOf(msgId), 'display_data').length > 0);
      k.signal('SIGINT');
      const stopped = await done;
      const reply = stopped.reply.content as { status: string; ename: string; evalue: string };
      assert.equal(reply.status, 'error');
      assert.equal(reply.ename, 'TrainingInterrupted');
      assert.match(reply.evalue, /^grid interrupted with 0 of 2 runs finished; the others stay queued and the workers keep going — run the same cell again to collect them$/);
      const views = [...ofType(stopped.outputs, 'display_data'), ...ofType(stopped.outputs, 'update_display_data')].map((m) => (m.content as Out).data['text/plain']!);
      assert.match(views[0]!, /0 workers connected .*no worker is connected: start one with `sharelora worker --queue …`/);
      assert.match(views.at(-1)!, /0\/2 done · 0 running · 2 queued .* · interrupted$/);
    } finally {
      assert.equal(await k.shutdown(), 0, k.log.join(''));
    }
  });

  it('hands a running job back on SIGTERM; another worker finishes it', async () => {
    const grid = runGrid({ r: [2], share: ['AB'], seed: [3], steps: [40] }, TINY, { queue: queue(), name: 'handback', log: false });
    await until('the run to start', () => events().some((e) => e.ev === 'start' && e.jobId.startsWith('handback.')));
    const first = events().find((e) => e.ev === 'start' && e.jobId.startsWith('handback.'))!;
    const w = workers[Number(first.worker.slice(1))]!;
    w.proc.kill('SIGTERM');
    assert.equal(await w.exited, 0);
    assert.match(w.log, /SIGTERM: taking no more jobs; finishing handback\.[0-9a-f]+ \(up to 0 s[^\n]*\n[^\n]*handing back handback\./);
    const t = await grid;
    assert.equal(t.numRows(), 1);
    const ev = events().filter((e) => e.jobId === first.jobId);
    assert.deepEqual(ev.filter((e) => e.ev === 'end').map((e) => e.worker === first.worker), [false], 'finished once, by the other worker');
    assert.equal(ev.filter((e) => e.ev === 'start').length, 2, 'started once on each');
  });
});
