/**
 * runGrid's results cache (run-cache.ts, shared with runProtocol): a finished
 * configuration is read back instead of run, a failed one runs again, shards
 * in separate processes split the grid and each returns the whole table, and
 * a damaged results file is an error naming the file and line.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelFromDir } from '../src/models/load.js';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { Trainer } from '../src/train/trainer.js';
import { gridCacheStatus, runGrid } from '../src/train/grid.js';
import { plainKey } from '../src/train/run-cache.js';
import type { Model } from '../src/models/types.js';
import { FIXTURES, testBackend, runShardProcess } from './helpers.js';

const rows = [[0, 17, 99, 3, 250, 11, 7, 42], [0, 300, 21, 64, 2, 9, 77, 5], [0, 4, 8, 15, 16, 23, 42, 2], [0, 9, 9, 9, 120, 121, 122, 2]];
const batch = { inputIds: rows, attentionMask: rows.map((r) => r.map(() => 1)), labels: [0, 1, 2, 0] };
const tmp = (name: string) => join(mkdtempSync(join(tmpdir(), 'grid-cache-')), name);

describe('runGrid cache', () => {
  let m: Model;
  before(async () => {
    await testBackend();
    m = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  });

  it('trains each configuration once: a second call reads every run back, a changed key trains again', async () => {
    const cache = tmp('runs.jsonl');
    let trained = 0;
    const space = { share: ['none', 'A'] as const, r: [2, 4], targets: [['q', 'v'], /attention\.output\.dense/] };
    const train = async ({ share, r, targets }: { share: 'none' | 'A'; r: number; targets: string[] | RegExp }) => {
      trained++;
      const adapter = injectShareLoRA(m, { r, share, targets, seed: 1 });
      const trainer = new Trainer(m, adapter, { lr: 1e-2, seed: 1 });
      await trainer.step(batch);
      await trainer.step(batch);
      const loss = (await trainer.evaluate([batch])).loss;
      const params = adapter.trainableParameterCount();
      trainer.dispose();
      adapter.unload();
      return { loss, params, note: `${share}/${r}` };
    };
    const a = await runGrid(space, train, { cache, key: { steps: 2 }, log: false });
    assert.equal(trained, 8);
    assert.equal(readFileSync(cache, 'utf8').trim().split('\n').length, 8);
    const b = await runGrid(space, train, { cache, key: { steps: 2 }, log: false });
    assert.equal(trained, 8, 'the second call trained nothing');
    assert.deepEqual(b.objects(), a.objects());
    assert.deepEqual(b.columnNames(), ['share', 'r', 'targets', 'loss', 'params', 'note', 'seconds']);
    // a RegExp target keys apart from a list (JSON alone would turn it into {})
    assert.equal(new Set(a.array('loss') as number[]).size, 8);
    await runGrid(space, train, { cache, key: { steps: 3 }, log: false, filter: (c) => c.r === 2 });
    assert.equal(trained, 12, 'a changed key trains again');
  });

  it('a failed run (onError record) is cached for the shards of its call but runs again on the next call', async () => {
    const cache = tmp('runs.jsonl');
    let fail = true, calls = 0;
    const fn = ({ x }: { x: number }) => { calls++; if (x === 2 && fail) throw new Error('flaky'); return { y: 10 * x }; };
    const a = await runGrid({ x: [1, 2, 3] }, fn, { cache, onError: 'record', log: false });
    assert.deepEqual(a.array('error'), [null, 'flaky', null]);
    fail = false;
    const b = await runGrid({ x: [1, 2, 3] }, fn, { cache, onError: 'record', log: false });
    assert.equal(calls, 4, 'only the failed run ran again');
    assert.deepEqual(Array.from(b.array('y') as number[]), [10, 20, 30]);
    assert.ok(!b.columnNames().includes('error'));
  });

  it('gridCacheStatus says which runs runGrid would read back, without running any', async () => {
    const cache = tmp('runs.jsonl');
    const fn = ({ x, lr }: { x: number; lr: number }) => { if (x === 3) throw new Error('flaky'); return { y: x * lr }; };
    assert.deepEqual(gridCacheStatus({ x: [1, 2], lr: [0.1] }, { cache, key: { k: 1 } }).map((e) => e.cached), [false, false], 'no file yet');
    await runGrid({ x: [1, 2, 3], lr: [0.1] }, fn, { cache, key: { k: 1 }, onError: 'record', log: false });
    const s = gridCacheStatus({ x: [1, 2, 3], lr: [0.1, 0.2] }, { cache, key: { k: 1 }, filter: (c) => c.x !== 2 || c.lr === 0.1 });
    assert.deepEqual(s.map((e) => [e.config.x, e.config.lr, e.cached]), [[1, 0.1, true], [1, 0.2, false], [2, 0.1, true], [3, 0.1, false], [3, 0.2, false]], 'a failed run is not cached');
    assert.ok(s.filter((e) => e.cached).every((e) => typeof e.seconds === 'number'));
    assert.ok(gridCacheStatus({ x: [1], lr: [0.1] }, { cache, key: { k: 2 } }).every((e) => !e.cached), 'another key');
    assert.ok(gridCacheStatus({ x: [1], lr: [0.1] }).every((e) => !e.cached), 'no cache');
  });

  it('two shards in two processes split the grid, and each returns the whole table', async () => {
    const cache = tmp('runs.jsonl');
    const mod = fileURLToPath(new URL('../src/train/grid.js', import.meta.url));
    const script = `
      import { runGrid } from ${JSON.stringify(mod)};
      let trained = 0;
      const t = await runGrid({ r: [1, 2, 4, 8], share: ['none', 'A', 'B'], seed: [0, 1] },
        async (c) => { trained++; await new Promise((res) => setTimeout(res, 20)); return { v: c.r * 100 + c.seed }; },
        { cache: ${JSON.stringify(cache)}, key: { data: 'x' }, log: false, waitSeconds: 60 });
      console.log(JSON.stringify({ trained, v: Array.from(t.array('v')) }));`;
    const [a, b] = await Promise.all([runShardProcess(script, 0, 2, 'g1'), runShardProcess(script, 1, 2, 'g1')]);
    assert.equal(a.trained + b.trained, 24);
    assert.ok(a.trained > 0 && b.trained > 0, `both shards trained (${a.trained}, ${b.trained})`);
    const expected = [1, 2, 4, 8].flatMap((r) => ['none', 'A', 'B'].flatMap(() => [0, 1].map((s) => r * 100 + s)));
    assert.deepEqual(a.v, expected);
    assert.deepEqual(b.v, expected);
    assert.equal(readFileSync(cache, 'utf8').trim().split('\n').length, 24);
  });

  it('a damaged line in the results file is an error naming the file and the line', async () => {
    const cache = tmp('runs.jsonl');
    await runGrid({ x: [1, 2, 3] }, ({ x }) => x, { cache, log: false });
    const lines = readFileSync(cache, 'utf8').split('\n');
    writeFileSync(cache, [lines[0], '{"key": "abc", "metr', ...lines.slice(1)].join('\n'));
    await assert.rejects(runGrid({ x: [1, 2, 3] }, ({ x }) => x, { cache, log: false }), (e: Error) => e.message === `${cache}: line 2 is not JSON; the results file is damaged (delete the line to train that run again)`);
    writeFileSync(cache, [lines[0], '{"key": "abc"}', ...lines.slice(1)].join('\n'));
    await assert.rejects(runGrid({ x: [1, 2, 3] }, ({ x }) => x, { cache, log: false }), new RegExp(`${cache.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: line 2 has no "key" or "metrics"`));
  });

  it('checks its options', async () => {
    const cache = tmp('runs.jsonl');
    await assert.rejects(runGrid({ x: [1] }, () => 1, { cache, queue: 'redis://localhost:6379/0' }), /option "cache" is for in-process grids and cannot be used with queue/);
    await assert.rejects(runGrid({ x: [1] }, () => 1, { key: { a: 1 } }), /option "key" only applies with cache/);
    await assert.rejects(runGrid({ x: [1] }, () => 1, { cache: '' }), /option "cache" must be the path of a results file/);
    await assert.rejects(runGrid({ x: [1] }, () => 1, { cache, cach: 1 } as never), /"cach" is not an option; did you mean "cache"\?/);
    await assert.rejects(runGrid({ f: [() => 1] }, () => 1, { cache, log: false }), /a setting\.f is a function, which cannot be part of a cache key/);
    assert.deepEqual(plainKey('w', 'k', { a: [NaN, /x/g, undefined] }), { a: [{ $number: 'NaN' }, { $regexp: '/x/g' }, null] });
  });
});
