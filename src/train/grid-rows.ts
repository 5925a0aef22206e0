/**
 * The rows and the table a grid produces, shared by the in-process run
 * (grid.ts) and the queued one (queue/client.ts), which grid.ts loads only on
 * demand: kept apart so neither imports the other at runtime.
 */
import * as aq from 'arquero';
import type { GridMetrics } from './grid.js';

/** How a setting's value appears in the table: arrays as "a,b", RegExps and objects as text. */
export function gridLabel(v: unknown): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => String(gridLabel(x))).join(',');
  if (v instanceof RegExp) return v.toString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
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
  return String(v);
}

/** One table row: settings (as labels), metrics, seconds, and error when there is one. */
export function gridRow(keys: string[], cfg: Record<string, unknown>, metrics: GridMetrics, error: string | undefined, seconds: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const k of keys) row[k] = gridLabel(cfg[k]);
  const m: Record<string, unknown> = typeof metrics === 'number' ? { value: metrics } : (metrics ?? {});
  if (typeof m !== 'object' || Array.isArray(m)) throw new TypeError(`runGrid: the run function must return an object of metrics, a number or nothing; got ${describe(m)}`);
  for (const [k, v] of Object.entries(m)) {
    if (keys.includes(k)) throw new RangeError(`runGrid: metric "${k}" has the name of a setting; rename the metric`);
    row[k] = v;
  }
  row.seconds = seconds;
  if (error !== undefined) row.error = error;
  return row;
}

/** The log line for a finished run. */
export function gridLogLine(keys: string[], row: Record<string, unknown>, metrics: GridMetrics, error: string | undefined, index: number, total: number): string {
  const m: Record<string, unknown> = typeof metrics === 'number' ? { value: metrics } : (metrics ?? {});
  const settings = keys.map((k) => `${k}=${row[k]}`).join(' ');
  const result = error !== undefined ? `error: ${error}` : Object.entries(m).map(([k, v]) => `${k}=${formatMetric(v)}`).join(' ');
  return `[${index + 1}/${total}] ${settings} → ${result} (${(row.seconds as number).toFixed(1)} s)`;
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
