/**
 * One protocol for comparing fine-tuning methods, written once for every
 * notebook that compares them:
 *
 *   1. tune: each method's learning rate is chosen on a validation metric from
 *      a sweep of at least four rates spanning at least a decade, over a few
 *      tuning seeds (their mean decides); with `widen`, a rate chosen at the
 *      sweep's edge adds the next rate beyond it, until the choice is inside
 *      or `widen` rates were added on that side;
 *   2. replicate: each method at its chosen rate with `seeds` fresh seeds
 *      (disjoint from the tuning seeds), paired by seed across methods;
 *   3. report: the test metrics of those runs only, summarized per method with
 *      t intervals, and compared with a baseline method paired by seed, with
 *      Holm's correction for the number of comparisons.
 *
 * Runs are cached by configuration in a results file (JSON lines), so a
 * notebook that is run again, or cut by a time limit, only trains what is
 * missing. Several processes can run one notebook together: with
 * SHARELORA_SHARD=i/n each claims runs one at a time (claim files made with
 * O_EXCL, scoped by SHARELORA_SHARD_SESSION) and waits for the others'
 * results before it moves on, so every process ends with the whole table
 * (run-cache.ts, which runGrid's `cache` uses too).
 *
 * @example
 *   const study = await runProtocol({
 *     methods: { LoRA: { share: 'none' }, ShareA: { share: 'A' } },
 *     lrs: [1e-3, 3e-3, 1e-2, 3e-2], seeds: 10, select: { metric: 'valLoss', goal: 'min' },
 *     cache: 'runs/02-classifier.jsonl', key: { model: modelHash, steps },
 *   }, async ({ config, lr, seed, phase }) => ({ valLoss, ...(phase === 'final' ? { testAcc } : {}) }));
 *   study.sweep; study.chosen; study.compare('testAcc')
 */
import * as aq from 'arquero';
import { checkOptions, OptionsError } from '../util/options.js';
import { compare as compareTable, summarize } from '../analysis/tables.js';
import { RunCache, runKey } from './run-cache.js';

export { stableJson } from './run-cache.js';

type Table = ReturnType<typeof aq.from>;

export type ProtocolPhase = 'tune' | 'final';
export interface ProtocolRun<C> {
  method: string;
  config: C;
  lr: number;
  seed: number;
  phase: ProtocolPhase;
}
/** what a run returns: numbers (metrics), or small arrays and strings (curves, notes) kept with the row */
export type ProtocolMetrics = Record<string, number | string | null | readonly number[]>;

export interface ProtocolOptions<C> {
  /** method name -> its settings, handed to the recipe */
  methods: Record<string, C>;
  /** the learning rates every method is tuned over: ≥ 4 values spanning ≥ 10× */
  lrs: readonly number[];
  /** per method, rates to use instead of `lrs` (e.g. a head-only probe that needs larger ones); same rules */
  lrsFor?: Record<string, readonly number[]>;
  /** seeds of the tuning runs (default [1000, 1001]: disjoint from the final seeds 0 … seeds−1) */
  tuneSeeds?: readonly number[];
  /** seeds at the chosen rate (default 10) */
  seeds?: number;
  /** the validation metric the rate is chosen on */
  select: { metric: string; goal: 'min' | 'max' };
  /** the method others are compared with (default: the first) */
  baseline?: string;
  /** results file (JSON lines); omitted: nothing is cached */
  cache?: string;
  /** everything else that defines a run (model hash, data sizes, updates …): part of every cache key */
  key?: Record<string, unknown>;
  /** a line per finished run (default console.log; false: none) */
  log?: boolean | ((line: string) => void);
  /** how long a shard waits for the others' results, in seconds (default 3600) */
  waitSeconds?: number;
  /** false: stop after tuning (the sweep and chosen rates only; `final` is empty and summary/compare refuse) */
  replicate?: boolean;
  /**
   * A sensitivity check, not a result: run these methods' final seeds at the given rates instead of the tuned ones
   * (e.g. every method at one rate, to see whether a difference comes from the rates chosen). Tuning still runs, so
   * `sweep` and `chosen` report what it chose; `final`, `summary` and `compare` are at these rates (each row has its lr).
   * Runs share the cache with the tuned ones: a method whose tuned rate is the one given reads its final runs back.
   */
  finalRates?: Record<string, number>;
  /**
   * How many rates a method's sweep may add beyond each edge (default 0: none). While a method's chosen rate is the
   * lowest (highest) of its sweep, the next rate below (above) is tuned, continuing the sweep's own spacing (1e-3,
   * 3e-3, 1e-2 … continues to 3e-4 and 3e-2 …), and the choice is made again. Runs already cached are read back.
   */
  widen?: number;
}

export interface ProtocolResult {
  /** every tuning run: method, lr, seed and its metrics */
  tuning: Table;
  /** per method and rate: the selection metric's mean over the tuning seeds, and whether it was chosen */
  sweep: Table;
  /** method -> chosen rate */
  chosen: Record<string, number>;
  /** method -> 'low' or 'high' where its chosen rate is still at that edge of its (widened) sweep, else null */
  edge: Record<string, 'low' | 'high' | null>;
  /** the final runs: method, lr, seed and metrics */
  final: Table;
  /** per method: mean of `value` over the final seeds with a t interval */
  summary(value: string): Table;
  /** every method − the baseline, paired by seed, with p_holm (Holm's step-down over the methods compared) */
  compare(value: string): Table;
  /** every run of a phase with all it returned, curves included */
  runs(phase?: ProtocolPhase): Array<Record<string, unknown>>;
  /** runs trained by this call (the rest came from the cache) */
  trained: number;
  seconds: number;
}

const KEYS = ['methods', 'lrs', 'lrsFor', 'tuneSeeds', 'seeds', 'select', 'baseline', 'cache', 'key', 'log', 'waitSeconds', 'replicate', 'finalRates', 'widen'];

function checkRates(where: string, field: string, lrs: unknown): readonly number[] {
  if (!Array.isArray(lrs) || lrs.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x <= 0)) throw new OptionsError(where, field, `must be an array of positive finite learning rates, got ${JSON.stringify(lrs)}`);
  if (lrs.length < 4) throw new OptionsError(where, field, `needs at least 4 learning rates (got ${lrs.length}): a rate chosen from fewer cannot show it is not at the sweep's edge`);
  if (Math.max(...lrs) / Math.min(...lrs) < 10 - 1e-9) throw new OptionsError(where, field, `must span at least a decade (got ${Math.min(...lrs)} … ${Math.max(...lrs)})`);
  return lrs as number[];
}

/**
 * The next rate beyond an edge of a sweep, continuing its spacing with period two (a 1-3-10 ladder steps ×3 then
 * ×3.33, so the step beyond the low edge repeats the second step, not the first); sorted ascending, ≥ 3 rates.
 */
export function rateBeyond(sorted: readonly number[], side: 'low' | 'high'): number {
  const n = sorted.length;
  const next = side === 'low' ? sorted[0]! / (sorted[2]! / sorted[1]!) : sorted[n - 1]! * (sorted[n - 2]! / sorted[n - 3]!);
  return Number(next.toPrecision(6));
}

/** Holm's step-down adjustment of p-values (nulls stay null) */
export function holm(ps: readonly (number | null)[]): (number | null)[] {
  const idx = ps.map((p, i) => [p, i] as const).filter(([p]) => p !== null && Number.isFinite(p)) as [number, number][];
  idx.sort((a, b) => a[0] - b[0]);
  const out: (number | null)[] = ps.map(() => null);
  let running = 0;
  idx.forEach(([p, i], k) => { running = Math.max(running, Math.min(1, (idx.length - k) * p)); out[i] = running; });
  return out;
}

interface CacheRow { key: string; method: string; lr: number; seed: number; phase: ProtocolPhase; metrics: ProtocolMetrics; seconds: number }

export async function runProtocol<C>(options: ProtocolOptions<C>, recipe: (run: ProtocolRun<C>) => Promise<ProtocolMetrics>): Promise<ProtocolResult> {
  const where = 'runProtocol';
  checkOptions(where, options, KEYS);
  const methods = Object.keys(options.methods ?? {});
  if (!methods.length) throw new OptionsError(where, 'methods', 'must name at least one method');
  const lrs = checkRates(where, 'lrs', options.lrs);
  const lrsFor: Record<string, readonly number[]> = {};
  for (const [m, v] of Object.entries(options.lrsFor ?? {})) {
    if (!methods.includes(m)) throw new OptionsError(where, 'lrsFor', `names "${m}", which is not a method (${methods.join(', ')})`);
    lrsFor[m] = checkRates(where, `lrsFor.${m}`, v);
  }
  for (const [m, v] of Object.entries(options.finalRates ?? {})) {
    if (!methods.includes(m)) throw new OptionsError(where, 'finalRates', `names "${m}", which is not a method (${methods.join(', ')})`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new OptionsError(where, `finalRates.${m}`, `must be a positive finite learning rate, got ${JSON.stringify(v)}`);
  }
  const widen = options.widen ?? 0;
  if (!Number.isInteger(widen) || widen < 0) throw new OptionsError(where, 'widen', `must be a whole number of rates (0 or more), got ${JSON.stringify(widen)}`);
  const tuneSeeds = options.tuneSeeds ?? [1000, 1001];
  const nSeeds = options.seeds ?? 10;
  if (!Number.isInteger(nSeeds) || nSeeds < 1) throw new OptionsError(where, 'seeds', `must be a positive integer, got ${nSeeds}`);
  const finalSeeds = Array.from({ length: nSeeds }, (_, i) => i);
  if (tuneSeeds.some((s) => finalSeeds.includes(s))) throw new OptionsError(where, 'tuneSeeds', `must be disjoint from the final seeds 0 … ${nSeeds - 1}, so the rate is not chosen on the runs that report it`);
  checkOptions(`${where} select`, options.select, ['metric', 'goal']);
  if (options.select.goal !== 'min' && options.select.goal !== 'max') throw new OptionsError(where, 'select.goal', `must be "min" or "max", got ${JSON.stringify(options.select.goal)}`);
  const baseline = options.baseline ?? methods[0]!;
  if (!methods.includes(baseline)) throw new OptionsError(where, 'baseline', `"${baseline}" is not a method (${methods.join(', ')})`);
  const log = options.log === false ? () => {} : typeof options.log === 'function' ? options.log : (s: string) => console.log(s);
  const cache = new RunCache<CacheRow>(where, options.cache, { waitSeconds: options.waitSeconds });
  const t0 = performance.now();
  const keyOf = (r: Omit<ProtocolRun<C>, 'phase'>) => runKey({ protocol: options.key ?? {}, method: r.method, config: r.config, lr: r.lr, seed: r.seed });
  const rowOf = (k: string) => cache.get(k);
  let trained = 0;

  const runAll = async (runs: ProtocolRun<C>[]) => {
    for (const r of runs) {
      const k = keyOf(r);
      if (rowOf(k) || !cache.claim(k)) continue;
      const ts = performance.now();
      const metrics = await recipe(r);
      const seconds = (performance.now() - ts) / 1000;
      await cache.put({ key: k, method: r.method, lr: r.lr, seed: r.seed, phase: r.phase, metrics, seconds });
      trained++;
      const shown = Object.entries(metrics).filter(([, v]) => typeof v === 'number').map(([n, v]) => `${n} ${(v as number).toPrecision(4)}`).join(', ');
      log(`${r.phase} ${r.method} lr ${r.lr} seed ${r.seed}: ${shown} (${seconds.toFixed(1)} s)`);
    }
    // other shards' runs: wait until their rows are in the results file
    const byKey = new Map(runs.map((r) => [keyOf(r), r]));
    await cache.waitFor([...byKey.keys()], (k) => { const r = byKey.get(k)!; return `${r.method} lr ${r.lr} seed ${r.seed}`; });
  };

  // each method's sweep, ascending; `widen` may add rates beyond its edges
  const rates: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, [...(lrsFor[m] ?? lrs)].sort((a, b) => a - b)]));
  const added: Record<string, Set<number>> = Object.fromEntries(methods.map((m) => [m, new Set<number>()]));
  const tuneRunsOf = (m: string, lr: number): ProtocolRun<C>[] => tuneSeeds.map((seed) => ({ method: m, config: options.methods[m] as C, lr, seed, phase: 'tune' as const }));
  const tuneRuns = methods.flatMap((m) => rates[m]!.flatMap((lr) => tuneRunsOf(m, lr)));
  await runAll(tuneRuns);
  const metricOf = (r: ProtocolRun<C>, name: string) => {
    const v = rowOf(keyOf(r))!.metrics[name];
    if (typeof v !== 'number') throw new Error(`${where}: the recipe's result for ${r.method} lr ${r.lr} seed ${r.seed} has no number "${name}" (it has ${Object.keys(rowOf(keyOf(r))!.metrics).join(', ')})`);
    return v;
  };
  const meanAt = (m: string, lr: number) => {
    const vs = tuneRunsOf(m, lr).map((r) => metricOf(r, options.select.metric));
    // a diverged run (NaN, Infinity) counts as the worst possible value
    return vs.some((v) => !Number.isFinite(v)) ? (options.select.goal === 'min' ? Infinity : -Infinity) : vs.reduce((a, b) => a + b, 0) / vs.length;
  };
  const choose = (m: string) => {
    let best: { lr: number; v: number } | undefined;
    for (const lr of rates[m]!) {
      const v = meanAt(m, lr);
      if (!best || (options.select.goal === 'min' ? v < best.v : v > best.v)) best = { lr, v };
    }
    return best!.lr;
  };
  const edgeOf = (m: string, lr: number): 'low' | 'high' | null => (lr === rates[m]![0] ? 'low' : lr === rates[m]!.at(-1) ? 'high' : null);
  // widening rounds: every method at an edge adds one rate a round, so the shards tune the new rates together
  const widened: Record<string, { low: number; high: number }> = Object.fromEntries(methods.map((m) => [m, { low: 0, high: 0 }]));
  for (;;) {
    const round: ProtocolRun<C>[] = [];
    for (const m of methods) {
      const side = edgeOf(m, choose(m));
      if (!side || widened[m]![side] >= widen) continue;
      const lr = rateBeyond(rates[m]!, side);
      widened[m]![side]++;
      added[m]!.add(lr);
      rates[m] = [...rates[m]!, lr].sort((a, b) => a - b);
      log(`${m}: the chosen rate is at the ${side} edge of its sweep; adding ${lr}`);
      round.push(...tuneRunsOf(m, lr));
    }
    if (!round.length) break;
    tuneRuns.push(...round);
    await runAll(round);
  }
  const chosen: Record<string, number> = {};
  const edge: Record<string, 'low' | 'high' | null> = {};
  const sweepRows: Record<string, unknown>[] = [];
  for (const m of methods) {
    chosen[m] = choose(m);
    edge[m] = edgeOf(m, chosen[m]!);
    for (const lr of rates[m]!) sweepRows.push({ method: m, lr, [options.select.metric]: meanAt(m, lr), chosen: lr === chosen[m], ...(widen ? { added: added[m]!.has(lr) } : {}) });
  }
  const replicate = options.replicate ?? true;
  const finalRuns = replicate ? methods.flatMap((m) => finalSeeds.map((seed) => ({ method: m, config: options.methods[m]!, lr: options.finalRates?.[m] ?? chosen[m]!, seed, phase: 'final' as const }))) : [];
  await runAll(finalRuns);
  const toRows = (runs: ProtocolRun<C>[]) => runs.map((r) => {
    const row = rowOf(keyOf(r))!;
    return { method: r.method, lr: r.lr, seed: r.seed, ...Object.fromEntries(Object.entries(row.metrics).filter(([, v]) => typeof v === 'number' || v === null)), seconds: row.seconds };
  });
  const notReplicated = () => { if (!replicate) throw new Error(`${where}: replicate was false, so there are no final runs to summarize or compare`); };
  const tuning = aq.from(toRows(tuneRuns));
  const final = finalRuns.length ? aq.from(toRows(finalRuns)) : aq.table({ method: [], lr: [], seed: [] });
  return {
    tuning, final, chosen, edge, trained, seconds: (performance.now() - t0) / 1000,
    sweep: aq.from(sweepRows),
    summary: (value) => { notReplicated(); return summarize(final, { by: 'method', value }); },
    compare: (value) => {
      notReplicated();
      const t = compareTable(final, { by: 'method', baseline, pairBy: 'seed', value });
      const adj = holm(Array.from(t.array('p') as ArrayLike<number | null>));
      return t.assign({ p_holm: adj });
    },
    runs: (phase = 'final') => (phase === 'final' ? finalRuns : tuneRuns).map((r) => ({ method: r.method, lr: r.lr, seed: r.seed, ...rowOf(keyOf(r))!.metrics })),
  };
}
