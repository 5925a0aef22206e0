/**
 * Result tables in, arquero tables of statistics out: `summarize` gives each
 * group's mean with its t interval, `compare` pairs each variant's runs with
 * the baseline's (by seed, say) and tests the differences.
 *
 * @example
 * summarize(results, { by: ['share'], value: 'accuracy' })
 * compare(results, { by: 'share', baseline: 'none', pairBy: 'seed', value: 'accuracy' })
 */
import * as aq from 'arquero';
import { meanCI, pairedTTest, wilcoxonSignedRank } from './stats.js';
import { checkOptions } from '../util/options.js';

type Table = aq.ColumnTable;

function checkColumns(what: string, t: Table, cols: string[]): void {
  const names = t.columnNames();
  for (const c of cols) if (!names.includes(c)) throw new RangeError(`${what}: no column "${c}"; the columns are ${names.join(', ')}`);
}

const asList = (v: string | string[]) => (Array.isArray(v) ? v : [v]);

/** Null (a run recorded as failed) is left out and shows in n; NaN or text is an error: a diverged run is a result to look at, not to average away. */
function numeric(what: string, column: string, v: unknown, row: number): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${what}: "${column}" is ${String(v)} in row ${row}; filter such runs out (or set them to null) before summarizing`);
  return v;
}

/** Rows grouped by the values of `by`, in first-appearance order. */
function groups(t: Table, by: string[]): { key: unknown[]; rows: number[] }[] {
  const cols = by.map((c) => t.array(c) as ArrayLike<unknown>);
  const out = new Map<string, { key: unknown[]; rows: number[] }>();
  for (let i = 0; i < t.numRows(); i++) {
    const key = cols.map((col) => col[i]);
    const id = JSON.stringify(key);
    if (!out.has(id)) out.set(id, { key, rows: [] });
    out.get(id)!.rows.push(i);
  }
  return [...out.values()];
}

export interface SummaryOptions {
  /** group by these columns */
  by: string | string[];
  /** the numeric column to summarize */
  value: string;
  /** confidence level (default 0.95) */
  level?: number;
}

/**
 * One row per group: n, mean, sd, and the Student-t confidence interval of
 * the mean (ci_low, ci_high). A group of one run has sd and interval null:
 * one run says nothing about the spread.
 */
export function summarize(t: Table, options: SummaryOptions): Table {
  checkOptions('summarize', options, ['by', 'value', 'level']);
  const by = asList(options.by);
  checkColumns('summarize', t, [...by, options.value]);
  const col = t.array(options.value) as ArrayLike<unknown>;
  const data: Record<string, unknown[]> = Object.fromEntries([...by, 'n', 'mean', 'sd', 'ci_low', 'ci_high'].map((c) => [c, []]));
  for (const g of groups(t, by)) {
    const vals = g.rows.map((i) => numeric('summarize', options.value, col[i], i)).filter((v): v is number => v !== null);
    by.forEach((c, j) => data[c]!.push(g.key[j]));
    if (vals.length === 0) {
      data.n!.push(0);
      for (const c of ['mean', 'sd', 'ci_low', 'ci_high']) data[c]!.push(null);
      continue;
    }
    const s = meanCI(vals, { level: options.level ?? 0.95 });
    data.n!.push(s.n);
    data.mean!.push(s.mean);
    data.sd!.push(s.sd);
    data.ci_low!.push(s.low);
    data.ci_high!.push(s.high);
  }
  return aq.table(data);
}

export interface ComparisonOptions {
  /** the column naming the variant (e.g. 'share') */
  by: string;
  /** the variant every other one is compared with (e.g. 'none', plain LoRA) */
  baseline: unknown;
  /** the column(s) that pair runs across variants (e.g. 'seed'); each pair key may appear once per variant */
  pairBy: string | string[];
  /** the numeric column to compare */
  value: string;
  /** confidence level (default 0.95) */
  level?: number;
}

/**
 * For each variant other than the baseline, the paired differences
 * variant − baseline over the pair keys both have: n pairs, mean_diff, sd_diff,
 * the t interval of the mean difference (ci_low, ci_high), the paired t-test's
 * p and the exact Wilcoxon signed-rank test's p_wilcoxon (two-sided). With
 * fewer than two pairs the interval and p-values are null. No correction for
 * multiple comparisons is applied.
 */
export function compare(t: Table, options: ComparisonOptions): Table {
  checkOptions('compare', options, ['by', 'baseline', 'pairBy', 'value', 'level']);
  const pairBy = asList(options.pairBy);
  checkColumns('compare', t, [options.by, ...pairBy, options.value]);
  if (pairBy.includes(options.by)) throw new RangeError(`compare: pairBy must not include the variant column "${options.by}"`);
  const level = options.level ?? 0.95;
  const variantCol = t.array(options.by) as ArrayLike<unknown>;
  const valueCol = t.array(options.value) as ArrayLike<unknown>;
  const keyCols = pairBy.map((c) => t.array(c) as ArrayLike<unknown>);

  /** variant → pair key → value */
  const byVariant = new Map<string, { variant: unknown; values: Map<string, number> }>();
  for (let i = 0; i < t.numRows(); i++) {
    const v = numeric('compare', options.value, valueCol[i], i);
    const vid = JSON.stringify(variantCol[i]);
    if (!byVariant.has(vid)) byVariant.set(vid, { variant: variantCol[i], values: new Map() });
    const key = JSON.stringify(keyCols.map((c) => c[i]));
    const values = byVariant.get(vid)!.values;
    if (values.has(key)) {
      throw new RangeError(`compare: ${options.by} = ${JSON.stringify(variantCol[i])} has two rows for ${pairBy.join(', ')} = ${key}; pair by more columns or aggregate first`);
    }
    if (v !== null) values.set(key, v);
  }
  const base = byVariant.get(JSON.stringify(options.baseline));
  if (!base) throw new RangeError(`compare: no rows with ${options.by} = ${JSON.stringify(options.baseline)} (the values are ${[...byVariant.values()].map((x) => JSON.stringify(x.variant)).join(', ')})`);

  const data: Record<string, unknown[]> = Object.fromEntries(
    [options.by, 'baseline', 'n', 'mean_diff', 'sd_diff', 'ci_low', 'ci_high', 'p', 'p_wilcoxon'].map((c) => [c, []]),
  );
  for (const [vid, { variant, values }] of byVariant) {
    if (vid === JSON.stringify(options.baseline)) continue;
    const keys = [...values.keys()].filter((k) => base.values.has(k));
    const x = keys.map((k) => values.get(k)!);
    const y = keys.map((k) => base.values.get(k)!);
    const diffs = x.map((v, i) => v - y[i]!);
    data[options.by]!.push(variant);
    data.baseline!.push(options.baseline);
    data.n!.push(keys.length);
    if (keys.length === 0) {
      for (const c of ['mean_diff', 'sd_diff', 'ci_low', 'ci_high', 'p', 'p_wilcoxon']) data[c]!.push(null);
      continue;
    }
    const ci = meanCI(diffs, { level });
    data.mean_diff!.push(ci.mean);
    data.sd_diff!.push(ci.sd);
    data.ci_low!.push(ci.low);
    data.ci_high!.push(ci.high);
    const spread = diffs.some((d) => d !== diffs[0]);
    data.p!.push(keys.length >= 2 && spread ? pairedTTest(x, y, { level }).p : null);
    data.p_wilcoxon!.push(keys.length >= 2 && diffs.some((d) => d !== 0) ? wilcoxonSignedRank(x, y).p : null);
  }
  return aq.table(data);
}
