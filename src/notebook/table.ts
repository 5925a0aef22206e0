/**
 * table(t): an arquero table or array of records as a compact HTML table
 * (plus aligned text for consoles). Long tables show their head and tail
 * with a row count in between.
 *
 * @example
 * table(trainer.history, { limit: 10 })
 */
import { inspect } from 'node:util';
import { MIME_BUNDLE, type Displayable, type DisplayOutput } from './mime.js';
import { toColumns, type Columns } from './columns.js';
import { escapeHtml, formatValue } from './format.js';

export interface TableOptions {
  /** rows shown before truncating (default 20) */
  limit?: number;
  /** significant digits for non-integer numbers (default 4) */
  digits?: number;
  /** subset and order of columns (default: all) */
  columns?: string[];
  /** caption above the table */
  title?: string;
}

interface Shown {
  names: string[];
  head: Record<string, unknown>[];
  tail: Record<string, unknown>[];
  hidden: number;
  numRows: number;
  numeric: Set<string>;
}

export class TableView implements Displayable {
  readonly html: string;
  readonly text: string;

  constructor(input: unknown, readonly options: TableOptions = {}) {
    const shown = pick(toColumns(input, 'table()'), options);
    const digits = options.digits ?? 4;
    this.html = toHtml(shown, digits, options.title);
    this.text = toText(shown, digits, options.title);
  }

  toString(): string {
    return this.text;
  }

  /** console.log(table(t)) prints the aligned text */
  [inspect.custom](): string {
    return this.text;
  }

  [MIME_BUNDLE](): DisplayOutput {
    return { data: { 'text/html': this.html, 'text/plain': this.text }, metadata: {} };
  }
}

export function table(input: unknown, options: TableOptions = {}): TableView {
  return new TableView(input, options);
}

function pick(cols: Columns, o: TableOptions): Shown {
  const limit = o.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`table(): limit must be a positive integer; got ${limit}`);
  const names = o.columns ?? cols.names;
  const missing = names.filter((n) => !cols.names.includes(n));
  if (missing.length) throw new RangeError(`table(): no column ${missing.map((n) => `"${n}"`).join(', ')}; the columns are ${cols.names.join(', ')}`);
  const n = cols.numRows;
  // Keep a few tail rows: the end of a training history is usually what matters.
  const tailCount = n > limit ? Math.min(5, Math.floor(limit / 4)) : 0;
  const headCount = n > limit ? limit - tailCount : n;
  const head = cols.rows(0, headCount);
  const tail = tailCount ? cols.rows(n - tailCount, tailCount) : [];
  const numeric = new Set(names.filter((name) => [...head, ...tail].some((r) => typeof r[name] === 'number')
    && [...head, ...tail].every((r) => r[name] === null || r[name] === undefined || typeof r[name] === 'number')));
  return { names, head, tail, hidden: n - head.length - tail.length, numRows: n, numeric };
}

function summary(s: Shown): string {
  const rows = `${s.numRows.toLocaleString('en-US')} row${s.numRows === 1 ? '' : 's'} × ${s.names.length} column${s.names.length === 1 ? '' : 's'}`;
  return s.hidden > 0 ? `${rows} (${s.hidden.toLocaleString('en-US')} rows not shown)` : rows;
}

function toHtml(s: Shown, digits: number, title?: string): string {
  const cell = (r: Record<string, unknown>, name: string) => {
    const num = s.numeric.has(name);
    return `<td${num ? ' style="text-align:right;font-variant-numeric:tabular-nums"' : ''}>${escapeHtml(formatValue(r[name], digits))}</td>`;
  };
  const row = (r: Record<string, unknown>) => `<tr>${s.names.map((n) => cell(r, n)).join('')}</tr>`;
  const gap = s.hidden > 0
    ? `<tr><td colspan="${s.names.length}" style="text-align:center;color:#888">⋯ ${s.hidden.toLocaleString('en-US')} more rows ⋯</td></tr>`
    : '';
  return [
    '<table class="dataframe sharelora-table" style="font-size:12px;border-collapse:collapse">',
    title ? `<caption style="text-align:left;font-weight:bold">${escapeHtml(title)}</caption>` : '',
    `<thead><tr>${s.names.map((n) => `<th style="text-align:${s.numeric.has(n) ? 'right' : 'left'}">${escapeHtml(n)}</th>`).join('')}</tr></thead>`,
    `<tbody>${s.head.map(row).join('')}${gap}${s.tail.map(row).join('')}</tbody>`,
    '</table>',
    `<div style="font-size:11px;color:#888">${summary(s)}</div>`,
  ].join('');
}

function toText(s: Shown, digits: number, title?: string): string {
  const MAX = 24;
  const fmt = (r: Record<string, unknown>, n: string) => formatValue(r[n], digits, MAX);
  const widths = s.names.map((n) => Math.max(Math.min(n.length, MAX), ...[...s.head, ...s.tail].map((r) => fmt(r, n).length)));
  const pad = (v: string, i: number) => (s.numeric.has(s.names[i]!) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!));
  const line = (vals: string[]) => vals.map(pad).join('  ').trimEnd();
  const out = [];
  if (title) out.push(title);
  out.push(line(s.names.map((n) => (n.length > MAX ? `${n.slice(0, MAX - 1)}…` : n))));
  for (const r of s.head) out.push(line(s.names.map((n) => fmt(r, n))));
  if (s.hidden > 0) out.push(`⋯ ${s.hidden.toLocaleString('en-US')} more rows ⋯`);
  for (const r of s.tail) out.push(line(s.names.map((n) => fmt(r, n))));
  out.push(summary(s));
  return out.join('\n');
}
