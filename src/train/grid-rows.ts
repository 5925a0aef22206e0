/**
 * The rows and the table a grid produces, shared by the in-process run
 * (grid.ts) and the queued one (queue/client.ts), which grid.ts loads only on
 * demand: kept apart so neither imports the other at runtime.
 */
import * as aq from 'arquero';
import type { GridMetrics } from './grid-types.js';

/** How a setting's value appears in the table: arrays as "a,b", RegExps and objects as text. */
export function gridLabel(v: unknown): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => String(gridLabel(x))).join(',');
  if (v instanceof RegExp) return v.toString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Columns every grid table may have besides settings and metrics; neither may take these names. */
export const RESERVED_COLUMNS = ['seconds', 'error'] as const;

/** Names a setting may not have: the table's own columns, and a key that would set the row's prototype. */
export function checkSettingNames(keys: string[]): void {
  for (const k of keys) {
    if ((RESERVED_COLUMNS as readonly string[]).includes(k) || k === '__proto__') {
      throw new RangeError(`runGrid: a setting is named "${k}", ${k === '__proto__' ? 'which cannot be a column' : `which is a column every grid table has (${RESERVED_COLUMNS.join(', ')})`}; rename the setting`);
    }
  }
}

/**
 * Why a run's metrics cannot become a row (a metric named like a setting or a
 * reserved column would replace it silently), or undefined when they can.
 */
export function metricNameProblem(keys: readonly string[], metrics: unknown): string | undefined {
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) return undefined;
  for (const k of Object.keys(metrics)) {
    if (keys.includes(k)) return `metric "${k}" has the name of a setting; rename the metric`;
    if ((RESERVED_COLUMNS as readonly string[]).includes(k)) return `metric "${k}" has the name of a column every grid table has (${RESERVED_COLUMNS.join(', ')}); rename the metric`;
    if (k === '__proto__') return 'a metric is named "__proto__", which cannot be a column; rename the metric';
  }
  return undefined;
}

/** `s` cut to `max` characters, saying how much was left out; control characters escaped (a value cannot forge log lines). */
export function clip(s: string, max: number): string {
  const cut = s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s;
  return cut.replace(/[\x00-\x08\x0b-\x1f\x7f]|\n/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function formatMetric(v: unknown): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(3);
    const p = v.toPrecision(4);
    // drop trailing zeros of a fraction only (1.100 → 1.1; 1200 stays)
    return p.includes('.') && !p.includes('e') ? p.replace(/0+$/, '').replace(/\.$/, '') : p;
  }
  if (Array.isArray(v)) return `[${v.length}]`;
  if (v !== null && typeof v === 'object') {
    // its names only: a whole object would print whole (50 MB of one once reached the log)
    const names = Object.keys(v);
    return `{${clip(names.slice(0, 5).join(','), 60)}${names.length > 5 ? `,… ${names.length - 5} more` : ''}}`;
  }
  return clip(String(v), 60);
}

/** One table row: settings (as labels), metrics, seconds, and error when there is one. */
export function gridRow(keys: string[], cfg: Record<string, unknown>, metrics: GridMetrics, error: string | undefined, seconds: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const k of keys) row[k] = gridLabel(cfg[k]);
  const m: Record<string, unknown> = typeof metrics === 'number' ? { value: metrics } : (metrics ?? {});
  if (typeof m !== 'object' || Array.isArray(m)) throw new TypeError(`runGrid: the run function must return an object of metrics, a number or nothing; got ${describe(m)}`);
  const problem = metricNameProblem(keys, m);
  if (problem) throw new RangeError(`runGrid: ${problem}`);
  for (const [k, v] of Object.entries(m)) row[k] = v;
  row.seconds = seconds;
  if (error !== undefined) row.error = error;
  return row;
}

/** The log line for a finished run. */
export function gridLogLine(keys: string[], row: Record<string, unknown>, metrics: GridMetrics, error: string | undefined, index: number, total: number): string {
  const m: Record<string, unknown> = typeof metrics === 'number' ? { value: metrics } : (metrics ?? {});
  const settings = keys.map((k) => `${k}=${row[k]}`).join(' ');
  const entries = Object.entries(m);
  const shown = entries.slice(0, 20).map(([k, v]) => `${clip(k, 40)}=${formatMetric(v)}`).join(' ') + (entries.length > 20 ? ` … (${entries.length - 20} more metrics)` : '');
  const result = error !== undefined ? `error: ${clip(error, 500)}` : shown;
  return `[${index + 1}/${total}] ${clip(settings, 500)} → ${result} (${(row.seconds as number).toFixed(1)} s)`;
}

/** Rows → table: every row gets every column (a metric one run lacks is null), in first-seen order. */
export function gridTable(keys: string[], rows: Record<string, unknown>[]): aq.ColumnTable {
  const columns: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  const ordered = [...keys, ...columns.filter((c) => !keys.includes(c) && c !== 'seconds' && c !== 'error'), 'seconds', ...(columns.includes('error') ? ['error'] : [])];
  const data: Record<string, unknown[]> = {};
  for (const c of ordered) data[c] = rows.map((r) => (r[c] === undefined ? null : r[c]));
  return aq.table(data);
}
