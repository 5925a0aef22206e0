/** runGrid / gridConfigs / summarizeGrid against hand-computed tables. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gridConfigs, gridLabel, meanStd, runGrid, summarizeGrid } from '../../src/train/grid.js';
import { TrainingInterrupted } from '../../src/train/stop.js';

describe('gridConfigs', () => {
  it('enumerates the cartesian product, last setting fastest', () => {
    assert.deepEqual(gridConfigs({ r: [4, 8], share: ['A', 'B', 'AB'] }), [
      { r: 4, share: 'A' }, { r: 4, share: 'B' }, { r: 4, share: 'AB' },
      { r: 8, share: 'A' }, { r: 8, share: 'B' }, { r: 8, share: 'AB' },
    ]);
  });
  it('keeps array values whole, filters, and handles empty settings', () => {
    const t = [['q', 'v'], ['q', 'v', 'o']];
    assert.deepEqual(gridConfigs({ targets: t, r: [2] }), [{ targets: ['q', 'v'], r: 2 }, { targets: ['q', 'v', 'o'], r: 2 }]);
    assert.deepEqual(gridConfigs({ r: [1, 2, 3] }, (c) => c.r !== 2), [{ r: 1 }, { r: 3 }]);
    assert.deepEqual(gridConfigs({ r: [1, 2], s: [] }), []);
    assert.deepEqual(gridConfigs({}), [{}]);
    assert.throws(() => gridConfigs({ r: 4 as unknown as number[] }), /setting "r" must be an array of values to try, got number 4; wrap a single value as \[value\]/);
  });
  it('labels values for the table', () => {
    assert.equal(gridLabel(['q', 'v']), 'q,v');
    assert.equal(gridLabel(/c_attn/), '/c_attn/');
    assert.equal(gridLabel({ a: 1 }), '{"a":1}');
    assert.equal(gridLabel(3), 3);
    assert.equal(gridLabel(undefined), null);
  });
});

describe('runGrid', () => {
  it('returns one row per run: settings, metrics, seconds', async () => {
    const seen: unknown[] = [];
    const lines: string[] = [];
    const t = await runGrid({ r: [4, 8], targets: [['q', 'v'], ['o']] }, async (cfg, info) => {
      seen.push([cfg.targets, info.index, info.total]);
      return { params: cfg.r * cfg.targets.length, name: `${cfg.r}` };
    }, { log: (line) => lines.push(line) });
    assert.deepEqual(t.columnNames(), ['r', 'targets', 'params', 'name', 'seconds']);
    assert.deepEqual(t.array('r'), [4, 4, 8, 8]);
    assert.deepEqual(t.array('targets'), ['q,v', 'o', 'q,v', 'o']);
    assert.deepEqual(Array.from(t.array('params') as number[]), [8, 4, 16, 8]);
    assert.deepEqual(seen, [[['q', 'v'], 0, 4], [['o'], 1, 4], [['q', 'v'], 2, 4], [['o'], 3, 4]]);
    assert.ok((t.array('seconds') as number[]).every((s) => s >= 0));
    assert.match(lines[0]!, /^\[1\/4\] r=4 targets=q,v → params=8 name=4 \(\d+\.\d s\)$/);
  });
  it('prints metrics compactly in the log line', async () => {
    const lines: string[] = [];
    await runGrid({ x: [1] }, () => ({ a: 1200.3, b: 1.1, c: 0.0625, d: 2e-5, e: 250, f: 123456.7 }), { log: (l) => lines.push(l) });
    assert.match(lines[0]!, /→ a=1200 b=1\.1 c=0\.0625 d=2\.000e-5 e=250 f=1\.235e\+5 \(/);
  });
  it('names a bare number "value", and fills missing metrics with null', async () => {
    const t = await runGrid({ x: [1, 2] }, (c) => c.x * 10, { log: false });
    assert.deepEqual(Array.from(t.array('value') as number[]), [10, 20]);
    const u = await runGrid({ x: [1, 2] }, (c) => (c.x === 1 ? { a: 1 } : { b: 2 }), { log: false });
    assert.deepEqual(u.columnNames(), ['x', 'a', 'b', 'seconds']);
    assert.deepEqual(u.array('a'), [1, null]);
    assert.deepEqual(u.array('b'), [null, 2]);
  });
  it('records or rethrows errors, and always stops on an interrupt', async () => {
    const fail = (c: { x: number }) => { if (c.x === 2) throw new Error('boom'); return { y: c.x }; };
    await assert.rejects(runGrid({ x: [1, 2, 3] }, fail, { log: false }), /boom/);
    const t = await runGrid({ x: [1, 2, 3] }, fail, { log: false, onError: 'record' });
    assert.deepEqual(t.array('y'), [1, null, 3]);
    assert.deepEqual(t.array('error'), [null, 'boom', null]);
    assert.equal(t.columnNames().at(-1), 'error');
    let runs = 0;
    await assert.rejects(runGrid({ x: [1, 2] }, () => { runs++; throw new TrainingInterrupted(3); }, { log: false, onError: 'record' }), TrainingInterrupted);
    assert.equal(runs, 1);
  });
  it('refuses a metric named like a setting', async () => {
    await assert.rejects(runGrid({ r: [1] }, () => ({ r: 2 }), { log: false }), /metric "r" has the name of a setting; rename the metric/);
  });
});

describe('summarizeGrid', () => {
  it('gives n, mean and sample std per group (hand-computed)', async () => {
    // accuracies per (share, seed): A → 0.70, 0.74, 0.78; none → 0.60, 0.64, (seed 2 NaN is dropped)
    const acc: Record<string, number[]> = { A: [0.7, 0.74, 0.78], none: [0.6, 0.64, NaN] };
    const t = await runGrid({ share: ['A', 'none'], seed: [0, 1, 2] }, (c) => ({ acc: acc[c.share]![c.seed]! }), { log: false });
    const s = summarizeGrid(t, { by: ['share'], metrics: ['acc'], pm: 2 });
    assert.deepEqual(s.columnNames(), ['share', 'n', 'acc_mean', 'acc_std', 'acc']);
    assert.deepEqual(s.array('share'), ['A', 'none']);
    assert.deepEqual(Array.from(s.array('n') as number[]), [3, 3]);
    const mean = s.array('acc_mean') as number[], std = s.array('acc_std') as number[];
    assert.ok(Math.abs(mean[0]! - 0.74) < 1e-12);
    // deviations ±0.04, 0: sqrt((0.0016 + 0 + 0.0016) / 2) = 0.04
    assert.ok(Math.abs(std[0]! - 0.04) < 1e-12);
    assert.ok(Math.abs(mean[1]! - 0.62) < 1e-12);
    // deviations ±0.02 over n-1 = 1: sqrt(0.0008) = 0.028284...
    assert.ok(Math.abs(std[1]! - Math.sqrt(0.0008)) < 1e-12);
    assert.deepEqual(s.array('acc'), ['0.74 ± 0.04', '0.62 ± 0.03']);
    assert.throws(() => summarizeGrid(t, { by: ['rank'], metrics: ['acc'] }), /no column "rank"; the columns are share, seed, acc, seconds/);
  });
  it('meanStd: null std for one value, nulls for none', () => {
    assert.deepEqual(meanStd([2]), { mean: 2, std: null });
    assert.deepEqual(meanStd([]), { mean: null, std: null });
    assert.deepEqual(meanStd([1, 3]), { mean: 2, std: Math.SQRT2 });
  });
});
