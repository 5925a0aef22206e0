/**
 * runProtocol: the rate is chosen on validation from the sweep, the final
 * seeds are fresh, runs are cached by configuration, shards split the work
 * and every shard ends with the whole table; Holm against R's p.adjust.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runShardProcess } from './helpers.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { holm, runProtocol, stableJson, type ProtocolRun } from '../src/train/protocol.js';

// a made-up task: validation loss is a parabola in log10(lr) with its minimum at `best`, plus seed noise
const BEST: Record<string, number> = { good: 3e-3, other: 1e-2 };
const recipe = async (r: ProtocolRun<{ offset: number }>) => {
  const valLoss = (Math.log10(r.lr) - Math.log10(BEST[r.method]!)) ** 2 + 0.01 * ((r.seed * 7919) % 13) / 13;
  return { valLoss, testAcc: 0.8 + r.config.offset + 0.001 * (r.seed % 5), curve: [1, 0.5, valLoss] };
};
const base = { methods: { good: { offset: 0 }, other: { offset: 0.05 } }, lrs: [1e-3, 3e-3, 1e-2, 3e-2], seeds: 6, select: { metric: 'valLoss', goal: 'min' as const }, log: false as const };

describe('runProtocol', () => {
  it('chooses each method\'s rate on validation, replicates at it with fresh seeds, compares paired by seed', async () => {
    const study = await runProtocol(base, recipe);
    assert.deepEqual(study.chosen, { good: 3e-3, other: 1e-2 });
    assert.equal(study.tuning.numRows(), 2 * 4 * 2);
    assert.equal(study.final.numRows(), 2 * 6);
    assert.deepEqual([...new Set(study.final.array('seed') as number[])], [0, 1, 2, 3, 4, 5]);
    assert.ok((study.tuning.array('seed') as number[]).every((s) => s >= 1000));
    const c = study.compare('testAcc').objects()[0] as Record<string, number>;
    assert.equal(c.method, 'other');
    assert.ok(Math.abs(c.mean_diff - 0.05) < 1e-12);
    assert.equal(c.p_holm, c.p);
    assert.deepEqual(study.runs()[0]!.curve, [1, 0.5, study.runs()[0]!.valLoss]);
    assert.equal(study.sweep.filter('d => d.chosen').numRows(), 2);
  });

  it('replicate: false stops after tuning', async () => {
    const study = await runProtocol({ ...base, replicate: false }, recipe);
    assert.deepEqual(study.chosen, { good: 3e-3, other: 1e-2 });
    assert.equal(study.final.numRows(), 0);
    assert.throws(() => study.summary('testAcc'), /replicate was false/);
  });

  it('finalRates: the final seeds at given rates, tuning unchanged; a tuned rate given reads its cached runs back', async () => {
    const cache = join(mkdtempSync(join(tmpdir(), 'protocol-')), 'runs.jsonl');
    const tuned = await runProtocol({ ...base, cache }, recipe);
    const seen: ProtocolRun<{ offset: number }>[] = [];
    const s = await runProtocol({ ...base, cache, finalRates: { good: 1e-2, other: 1e-2 } }, async (r) => { seen.push(r); return recipe(r); });
    assert.deepEqual(s.chosen, { good: 3e-3, other: 1e-2 });
    assert.deepEqual([...new Set(s.final.array('lr') as number[])], [1e-2]);
    // only good's finals at 1e-2 are new: the tuning runs and other's finals (its tuned rate) come from the cache
    assert.equal(s.trained, 6);
    assert.ok(seen.every((r) => r.method === 'good' && r.lr === 1e-2 && r.phase === 'final'));
    assert.deepEqual(s.final.filter((d: { method: string }) => d.method === 'other').objects().map((r) => ({ ...r, seconds: 0 })),
      tuned.final.filter((d: { method: string }) => d.method === 'other').objects().map((r) => ({ ...r, seconds: 0 })));
    await assert.rejects(runProtocol({ ...base, finalRates: { gooood: 1e-2 } }, recipe), /finalRates.*"gooood", which is not a method/);
    await assert.rejects(runProtocol({ ...base, finalRates: { good: -1 } }, recipe), /finalRates\.good.*positive finite/);
  });

  it('caches by configuration: a second call trains nothing; a changed key trains again', async () => {
    const cache = join(mkdtempSync(join(tmpdir(), 'protocol-')), 'runs.jsonl');
    let calls = 0;
    const counted = async (r: ProtocolRun<{ offset: number }>) => { calls++; return recipe(r); };
    const a = await runProtocol({ ...base, cache, key: { steps: 10 } }, counted);
    assert.equal(a.trained, 28);
    assert.equal(calls, 28);
    const b = await runProtocol({ ...base, cache, key: { steps: 10 } }, counted);
    assert.equal(b.trained, 0);
    assert.deepEqual(b.final.objects().map((r) => ({ ...r, seconds: 0 })), a.final.objects().map((r) => ({ ...r, seconds: 0 })));
    const c = await runProtocol({ ...base, cache, key: { steps: 20 } }, counted);
    assert.equal(c.trained, 28);
    // a line cut by a killed process at the end of the file is skipped and trained again
    writeFileSync(cache, readFileSync(cache, 'utf8') + '{"key":"abc","met');
    const d = await runProtocol({ ...base, cache, key: { steps: 20 } }, counted);
    assert.equal(d.trained, 0);
  });

  it('refuses sweeps that cannot show a tuned rate, overlapping seeds, unknown keys', async () => {
    await assert.rejects(runProtocol({ ...base, lrs: [1e-3, 2e-3, 3e-3] }, recipe), /at least 4 learning rates/);
    await assert.rejects(runProtocol({ ...base, lrs: [1e-3, 2e-3, 3e-3, 5e-3] }, recipe), /span at least a decade/);
    await assert.rejects(runProtocol({ ...base, tuneSeeds: [0, 1] }, recipe), /disjoint/);
    await assert.rejects(runProtocol({ ...base, seed: 3 } as never, recipe), /seed/);
    await assert.rejects(runProtocol({ ...base, select: { metric: 'nope', goal: 'min' } }, recipe), /no number "nope"/);
  });

  it('shards: two processes split the runs and both end with the whole table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protocol-shard-'));
    const cache = join(dir, 'runs.jsonl');
    const mod = fileURLToPath(new URL('../src/train/protocol.js', import.meta.url));
    const script = `
      import { runProtocol } from ${JSON.stringify(mod)};
      const r = await runProtocol({ methods: { a: {}, b: {} }, lrs: [1e-3, 3e-3, 1e-2, 3e-2], seeds: 4, select: { metric: 'v', goal: 'min' }, cache: ${JSON.stringify(cache)}, log: false, waitSeconds: 60 },
        async (run) => { await new Promise((res) => setTimeout(res, 20)); return { v: Math.abs(Math.log10(run.lr) + 2) + (run.method === 'b' ? 1 : 0), t: run.seed }; });
      console.log(JSON.stringify({ trained: r.trained, chosen: r.chosen, rows: r.final.numRows() }));`;
    const [a, b] = await Promise.all([runShardProcess(script, 0, 2, 't1'), runShardProcess(script, 1, 2, 't1')]);
    assert.equal(a.trained + b.trained, 2 * 4 * 2 + 2 * 4);
    assert.ok(a.trained > 0 && b.trained > 0, `both shards trained (${a.trained}, ${b.trained})`);
    assert.deepEqual(a.chosen, { a: 1e-2, b: 1e-2 });
    assert.deepEqual(a.chosen, b.chosen);
    assert.equal(a.rows, 8);
    assert.equal(b.rows, 8);
    assert.equal(readFileSync(cache, 'utf8').trim().split('\n').length, 24);
  });

  it('Holm matches R: p.adjust(c(0.01, 0.04, 0.03, NA), "holm")', () => {
    const adj = holm([0.01, 0.04, 0.03, null]);
    assert.deepEqual(adj.map((x) => (x === null ? null : +x.toFixed(12))), [0.03, 0.06, 0.06, null]);
    assert.equal(stableJson({ b: 1, a: [1, { d: 2, c: 3 }] }), '{"a":[1,{"c":3,"d":2}],"b":1}');
  });
});
