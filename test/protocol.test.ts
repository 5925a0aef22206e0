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
import { holm, rateBeyond, runProtocol, stableJson, type ProtocolRun } from '../src/train/protocol.js';

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

  it('rateBeyond continues a sweep\'s spacing: a 1-3-10 ladder, a decade ladder', () => {
    assert.equal(rateBeyond([1e-3, 3e-3, 1e-2, 3e-2], 'low'), 3e-4);
    assert.equal(rateBeyond([1e-3, 3e-3, 1e-2, 3e-2], 'high'), 1e-1);
    assert.equal(rateBeyond([3e-3, 1e-2, 3e-2, 1e-1], 'low'), 1e-3);
    assert.equal(rateBeyond([3e-3, 1e-2, 3e-2, 1e-1], 'high'), 3e-1);
    assert.equal(rateBeyond([1e-4, 1e-3, 1e-2, 1e-1], 'low'), 1e-5);
  });

  it('widen: a rate chosen at an edge adds rates beyond it until the choice is inside, at most widen a side; cached runs are read back', async () => {
    const cache = join(mkdtempSync(join(tmpdir(), 'protocol-')), 'runs.jsonl');
    // 'low' is best at 2e-4 (below the sweep), 'high' at 0.12 (above), 'mid' inside
    const best: Record<string, number> = { low: 2e-4, high: 0.12, mid: 3e-3 };
    const r2 = async (r: ProtocolRun<{ offset: number }>) => ({ valLoss: (Math.log10(r.lr) - Math.log10(best[r.method]!)) ** 2, testAcc: 0.8 });
    const methods = { mid: { offset: 0 }, low: { offset: 0 }, high: { offset: 0 } };
    const plain = await runProtocol({ ...base, methods, cache, replicate: false }, r2);
    assert.deepEqual(plain.chosen, { mid: 3e-3, low: 1e-3, high: 3e-2 });
    assert.deepEqual(plain.edge, { mid: null, low: 'low', high: 'high' });
    const lines: string[] = [];
    const w = await runProtocol({ ...base, methods, cache, replicate: false, widen: 2, log: (l: string) => lines.push(l) }, r2);
    // low: 3e-4 is better than 1e-3, then 1e-4 is worse than 3e-4: chosen inside at 3e-4
    assert.deepEqual(w.chosen, { mid: 3e-3, low: 3e-4, high: 1e-1 });
    assert.deepEqual(w.edge, { mid: null, low: null, high: null });
    // only the added rates were trained: 1e-4 and 3e-4 for low, 1e-1 and 3e-1 for high, two tuning seeds each
    assert.equal(w.trained, 8);
    assert.equal(w.tuning.numRows(), 3 * 4 * 2 + 8);
    const sweep = w.sweep.objects() as Array<{ method: string; lr: number; added: boolean; chosen: boolean }>;
    assert.deepEqual(sweep.filter((r) => r.method === 'low').map((r) => [r.lr, r.added, r.chosen]), [[1e-4, true, false], [3e-4, true, true], [1e-3, false, false], [3e-3, false, false], [1e-2, false, false], [3e-2, false, false]]);
    assert.ok(lines.some((l) => /low: the chosen rate is at the low edge of its sweep; adding 0\.0003/.test(l)), lines.join('\n'));
    // at most `widen` a side: with widen 1 'high' stops at 1e-1, still its edge, and says so
    const one = await runProtocol({ ...base, methods: { high: { offset: 0 } }, lrs: [1e-3, 3e-3, 1e-2, 3e-2], replicate: false, widen: 1 }, async (r) => ({ valLoss: (Math.log10(r.lr) - Math.log10(0.5)) ** 2 }));
    assert.deepEqual(one.chosen, { high: 1e-1 });
    assert.equal(one.edge.high, 'high');
    await assert.rejects(runProtocol({ ...base, widen: -1 }, recipe), /widen.*whole number/);
    await assert.rejects(runProtocol({ ...base, widen: 1.5 }, recipe), /widen.*whole number/);
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
