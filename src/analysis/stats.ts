/**
 * Small-sample statistics for comparing training runs: a mean with its
 * Student-t confidence interval, the paired t-test, the Wilcoxon signed-rank
 * test (exact for small n, as R's wilcox.test), and a seeded percentile
 * bootstrap. Each follows R's definitions so results can be checked there.
 *
 * @example
 * meanCI([0.81, 0.84, 0.79])                       // { n: 3, mean: 0.813, low: 0.75, high: 0.88, ... }
 * pairedTTest(shareA, lora)                        // per-seed pairs: shareA[i] vs lora[i]
 * wilcoxonSignedRank(shareA, lora).p               // exact p; with 3 pairs it can never be below 0.25
 */
import { normalCdf, tQuantile, tSurvival } from './distributions.js';
import { checkOptions } from '../util/options.js';
import { Rng } from '../util/rng.js';

export type Alternative = 'two-sided' | 'less' | 'greater';

function checkLevel(what: string, level: number): void {
  if (!(level > 0 && level < 1)) throw new RangeError(`${what}: level must be in (0, 1), e.g. 0.95; got ${level}`);
}

function checkAlternative(what: string, a: string): asserts a is Alternative {
  if (a !== 'two-sided' && a !== 'less' && a !== 'greater') throw new RangeError(`${what}: alternative must be 'two-sided', 'less' or 'greater'; got ${JSON.stringify(a)}`);
}

function finiteValues(what: string, values: ArrayLike<number>): number[] {
  const out = Array.from(values);
  const bad = out.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${what}: value ${bad} is ${String(out[bad])}; every value must be a finite number (drop or fix failed runs first)`);
  return out;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n − 1 in the denominator); NaN for fewer than two values. */
export function sd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

export interface MeanCI {
  n: number;
  mean: number;
  /** sample standard deviation; null for n = 1 */
  sd: number | null;
  /** standard error of the mean; null for n = 1 */
  se: number | null;
  df: number | null;
  level: number;
  /** the interval mean ± t(1 − (1 − level)/2, n − 1) · se; null for n = 1 (no spread to estimate) */
  low: number | null;
  high: number | null;
}

export interface LevelOptions {
  /** confidence level (default 0.95) */
  level?: number;
}

/** Mean and Student-t confidence interval (R: t.test(x)$conf.int). */
export function meanCI(values: ArrayLike<number>, options: LevelOptions = {}): MeanCI {
  checkOptions('meanCI', options, ['level']);
  const level = options.level ?? 0.95;
  checkLevel('meanCI', level);
  const xs = finiteValues('meanCI', values);
  const n = xs.length;
  if (n === 0) throw new RangeError('meanCI: no values');
  const m = mean(xs);
  if (n === 1) return { n, mean: m, sd: null, se: null, df: null, level, low: null, high: null };
  const s = sd(xs);
  const se = s / Math.sqrt(n);
  const half = tQuantile(1 - (1 - level) / 2, n - 1) * se;
  return { n, mean: m, sd: s, se, df: n - 1, level, low: m - half, high: m + half };
}

export interface TestOptions extends LevelOptions {
  /** the alternative hypothesis about x − y (default 'two-sided') */
  alternative?: Alternative;
}

export interface PairedTTest {
  n: number;
  /** mean of x − y */
  meanDiff: number;
  sdDiff: number;
  se: number;
  t: number;
  df: number;
  p: number;
  level: number;
  /** confidence interval for the mean difference (one-sided alternatives give a half-infinite one, as R does) */
  low: number;
  high: number;
}

/** Paired t-test of x − y (R: t.test(x, y, paired = TRUE)). Needs at least two pairs. */
export function pairedTTest(x: ArrayLike<number>, y: ArrayLike<number>, options: TestOptions = {}): PairedTTest {
  checkOptions('pairedTTest', options, ['level', 'alternative']);
  const level = options.level ?? 0.95;
  const alternative = options.alternative ?? 'two-sided';
  checkLevel('pairedTTest', level);
  checkAlternative('pairedTTest', alternative);
  const d = differences('pairedTTest', x, y);
  const n = d.length;
  if (n < 2) throw new RangeError(`pairedTTest: needs at least 2 pairs to estimate the spread; got ${n}`);
  const m = mean(d);
  const s = sd(d);
  const se = s / Math.sqrt(n);
  const df = n - 1;
  const t = m / se;
  let p: number;
  let low: number;
  let high: number;
  if (alternative === 'two-sided') {
    p = Math.min(1, 2 * tSurvival(Math.abs(t), df));
    const half = tQuantile(1 - (1 - level) / 2, df) * se;
    [low, high] = [m - half, m + half];
  } else if (alternative === 'greater') {
    p = tSurvival(t, df);
    [low, high] = [m - tQuantile(level, df) * se, Infinity];
  } else {
    p = 1 - tSurvival(t, df);
    [low, high] = [-Infinity, m + tQuantile(level, df) * se];
  }
  return { n, meanDiff: m, sdDiff: s, se, t, df, p, level, low, high };
}

function differences(what: string, x: ArrayLike<number>, y: ArrayLike<number>): number[] {
  const xs = finiteValues(`${what} (x)`, x);
  const ys = finiteValues(`${what} (y)`, y);
  if (xs.length !== ys.length) throw new RangeError(`${what}: x and y must pair up; got ${xs.length} and ${ys.length} values`);
  return xs.map((v, i) => v - ys[i]!);
}

export interface WilcoxonResult {
  /** pairs used: those whose difference is not zero */
  n: number;
  /** zero differences dropped (R's default zero.method) */
  zeros: number;
  /** V: the sum of the ranks of the positive differences */
  V: number;
  p: number;
  /** 'exact' for n < 50 without ties or zeros, else 'normal' (with continuity and tie corrections, as R) */
  method: 'exact' | 'normal';
}

/** Average ranks (1-based) of `xs`, ties sharing the mean rank; also the tie group sizes. */
function ranks(xs: readonly number[]): { r: number[]; ties: number[] } {
  const order = xs.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  const ties: number[] = [];
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const avg = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) r[order[k]![1]] = avg;
    ties.push(j - i + 1);
    i = j + 1;
  }
  return { r, ties };
}

/** Number of subsets of {1..n} with each rank sum: the exact null distribution of V times 2^n. */
function signedRankCounts(n: number): number[] {
  const max = (n * (n + 1)) / 2;
  const c = new Array<number>(max + 1).fill(0);
  c[0] = 1;
  for (let k = 1; k <= n; k++) for (let s = (k * (k + 1)) / 2; s >= k; s--) c[s]! += c[s - k]!;
  return c;
}

/**
 * Wilcoxon signed-rank test of x − y (R: wilcox.test(x, y, paired = TRUE)):
 * exact p-values from the permutation distribution when n < 50 and there are
 * no ties or zero differences, else the normal approximation R uses.
 */
export function wilcoxonSignedRank(x: ArrayLike<number>, y: ArrayLike<number>, options: Omit<TestOptions, 'level'> = {}): WilcoxonResult {
  checkOptions('wilcoxonSignedRank', options, ['alternative']);
  const alternative = options.alternative ?? 'two-sided';
  checkAlternative('wilcoxonSignedRank', alternative);
  const all = differences('wilcoxonSignedRank', x, y);
  const d = all.filter((v) => v !== 0);
  const zeros = all.length - d.length;
  const n = d.length;
  if (n === 0) throw new RangeError('wilcoxonSignedRank: every difference is zero; there is nothing to rank');
  const { r, ties } = ranks(d.map(Math.abs));
  const V = d.reduce((s, v, i) => (v > 0 ? s + r[i]! : s), 0);
  const hasTies = ties.some((t) => t > 1);
  if (n < 50 && !hasTies && zeros === 0) {
    const counts = signedRankCounts(n);
    const total = 2 ** n;
    // P(V ≤ v) and P(V ≥ v); V is an integer here (no ties).
    const le = (v: number) => counts.slice(0, Math.floor(v) + 1).reduce((a, b) => a + b, 0) / total;
    const ge = (v: number) => counts.slice(Math.ceil(v)).reduce((a, b) => a + b, 0) / total;
    let p: number;
    if (alternative === 'greater') p = ge(V);
    else if (alternative === 'less') p = le(V);
    else p = Math.min(1, 2 * (V > (n * (n + 1)) / 4 ? ge(V) : le(V)));
    return { n, zeros, V, p, method: 'exact' };
  }
  let z = V - (n * (n + 1)) / 4;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - ties.reduce((a, t) => a + (t ** 3 - t), 0) / 48);
  const correction = alternative === 'two-sided' ? Math.sign(z) * 0.5 : alternative === 'greater' ? 0.5 : -0.5;
  z = (z - correction) / sigma;
  const p = alternative === 'less' ? normalCdf(z) : alternative === 'greater' ? normalCdf(-z) : Math.min(1, 2 * Math.min(normalCdf(z), normalCdf(-z)));
  return { n, zeros, V, p, method: 'normal' };
}

/** R's default quantile (type 7): linear interpolation between order statistics. */
export function quantile(values: ArrayLike<number>, p: number): number {
  const xs = finiteValues('quantile', values).sort((a, b) => a - b);
  if (xs.length === 0) throw new RangeError('quantile: no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile: p must be in [0, 1]; got ${p}`);
  const h = (xs.length - 1) * p;
  const lo = Math.floor(h);
  return xs[lo]! + (h - lo) * ((xs[Math.min(lo + 1, xs.length - 1)]! - xs[lo]!));
}

export interface BootstrapOptions extends LevelOptions {
  /** resamples drawn (default 2000) */
  resamples?: number;
  /** the resampling seed (default 0), so a saved notebook's interval can be reproduced */
  seed?: number;
}

export interface BootstrapCI {
  /** the statistic on the data itself */
  estimate: number;
  level: number;
  /** percentile interval: the (1 − level)/2 and (1 + level)/2 quantiles of the resampled statistic */
  low: number;
  high: number;
  resamples: number;
}

/**
 * Percentile bootstrap confidence interval for any statistic of a sample
 * (rows are resampled with replacement, so paired data stays paired when
 * each item is a pair). With a handful of runs the interval is too narrow:
 * the bootstrap cannot see spread the sample does not show.
 *
 * @example
 * bootstrapCI(examples, (s) => corpusBleu(s), { resamples: 1000 })
 */
export function bootstrapCI<T>(data: readonly T[], statistic: (sample: T[]) => number, options: BootstrapOptions = {}): BootstrapCI {
  checkOptions('bootstrapCI', options, ['level', 'resamples', 'seed']);
  const level = options.level ?? 0.95;
  const resamples = options.resamples ?? 2000;
  checkLevel('bootstrapCI', level);
  if (!Number.isInteger(resamples) || resamples < 100) throw new RangeError(`bootstrapCI: resamples must be an integer ≥ 100; got ${resamples}`);
  if (!Array.isArray(data) || data.length === 0) throw new RangeError('bootstrapCI: data must be a non-empty array');
  const estimate = statistic([...data]);
  const rng = new Rng(options.seed ?? 0);
  const stats = new Array<number>(resamples);
  const n = data.length;
  const sample = new Array<T>(n);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) sample[i] = data[Math.floor(rng.next() * n)]!;
    const v = statistic(sample.slice());
    if (!Number.isFinite(v)) throw new RangeError(`bootstrapCI: the statistic gave ${v} on resample ${b}`);
    stats[b] = v;
  }
  return { estimate, level, low: quantile(stats, (1 - level) / 2), high: quantile(stats, (1 + level) / 2), resamples };
}
