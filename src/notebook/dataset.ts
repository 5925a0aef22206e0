/**
 * Data-set splits as the loaders return them (`{ table, task }`, possibly
 * grouped: `{ train, validation }`) shown as tables with the task as their
 * caption, and arquero tables inside other values shown as one line, where
 * Node's inspect would print every column's storage (33 KB for 8 reviews).
 */
import { inspect } from 'node:util';
import type { DisplayOutput } from './mime.js';
import { isArqueroTable, isPlainObject, type ArqueroLike } from './columns.js';
import { table } from './table.js';

interface Split { table: ArqueroLike; task?: { name?: unknown; kind?: unknown } }

/** `{ table, task? }` and nothing else: what every loader in src/data returns. */
export function isSplit(v: unknown): v is Split {
  return isPlainObject(v) && isArqueroTable(v.table) && Object.keys(v).every((k) => k === 'table' || k === 'task')
    && (v.task === undefined || isPlainObject(v.task));
}

/** An object whose values are all splits or tables, e.g. `{ source, target }` or `{ train, test }`. */
export function isSplitGroup(v: unknown): v is Record<string, Split | ArqueroLike> {
  if (!isPlainObject(v) || isSplit(v)) return false;
  const values = Object.values(v);
  return values.length > 0 && values.length <= 20 && values.every((x) => isSplit(x) || isArqueroTable(x));
}

function caption(s: Split, key?: string): string {
  const t = s.task;
  const what = t && typeof t.name === 'string' ? `${t.name}${typeof t.kind === 'string' ? ` (${t.kind})` : ''}` : '';
  return [key, what].filter(Boolean).join(': ') || 'table';
}

export function splitOutput(v: Split | Record<string, Split | ArqueroLike>): DisplayOutput {
  const parts = isSplit(v)
    ? [table(v.table, { limit: 10, title: caption(v) })]
    : Object.entries(v).map(([k, x]) => (isSplit(x) ? table(x.table, { limit: 10, title: caption(x, k) }) : table(x, { limit: 10, title: k })));
  return {
    data: { 'text/html': parts.map((p) => p.html).join('\n'), 'text/plain': parts.map((p) => p.text).join('\n\n') },
    metadata: {},
  };
}

/** One line for a table met inside another value. */
export function tableSummary(t: ArqueroLike): string {
  const names = t.columnNames();
  return `ColumnTable <${t.numRows()} rows × ${names.length} columns: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}>`;
}

/**
 * A copy of plain objects and arrays (to a depth) with every arquero table
 * replaced by its one-line summary; other values are kept as they are.
 */
export function withTableSummaries(v: unknown, depth = 5, seen = new Set<unknown>()): unknown {
  if (isArqueroTable(v)) {
    const line = tableSummary(v);
    return { [inspect.custom]: () => line };
  }
  if (depth <= 0 || seen.has(v) || !(Array.isArray(v) || isPlainObject(v))) return v;
  seen.add(v);
  const out = Array.isArray(v) ? v.map((x) => withTableSummaries(x, depth - 1, seen))
    : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withTableSummaries(x, depth - 1, seen)]));
  seen.delete(v);
  return out;
}
