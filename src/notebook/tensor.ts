/**
 * How a tfjs tensor shows as a cell result: dtype and shape first, then the
 * values (a small grid for rank ≤ 2, tfjs's own summary text otherwise).
 * Duck-typed so tensors from any tfjs-core copy qualify.
 */
import type { DisplayOutput } from './mime.js';
import { escapeHtml, formatValue } from './format.js';

export interface TensorLike {
  shape: number[];
  dtype: string;
  rank: number;
  size: number;
  isDisposed: boolean;
  dataSync(): ArrayLike<unknown>;
  arraySync(): unknown;
  toString(verbose?: boolean): string;
}

export function isTensorLike(v: unknown): v is TensorLike {
  const t = v as Partial<TensorLike> | null;
  return typeof t === 'object' && t !== null && Array.isArray(t.shape) && typeof t.dtype === 'string'
    && typeof t.rank === 'number' && typeof t.dataSync === 'function' && typeof t.arraySync === 'function';
}

const MAX_CELLS = 20;

export function tensorOutput(t: TensorLike): DisplayOutput {
  const head = `Tensor ${t.dtype} [${t.shape.join(', ')}]`;
  if (t.isDisposed) {
    return { data: { 'text/plain': `${head} (disposed)`, 'text/html': `<code>${escapeHtml(head)} (disposed)</code>` }, metadata: {} };
  }
  // tfjs's toString prints "Tensor\n    <values>"; the first line repeats nothing useful.
  const text = `${head}\n${t.toString().split('\n').slice(1).join('\n')}`;
  let grid = '';
  if (t.rank <= 2 && t.dtype !== 'string') {
    const values = t.dataSync();
    const [rows, cols] = t.rank === 0 ? [1, 1] : t.rank === 1 ? [1, t.shape[0]!] : [t.shape[0]!, t.shape[1]!];
    const shownRows = Math.min(rows, MAX_CELLS);
    const shownCols = Math.min(cols, MAX_CELLS);
    const body: string[] = [];
    for (let i = 0; i < shownRows; i++) {
      const cells: string[] = [];
      for (let j = 0; j < shownCols; j++) cells.push(`<td style="text-align:right">${escapeHtml(formatValue(values[i * cols + j]))}</td>`);
      if (cols > shownCols) cells.push('<td>⋯</td>');
      body.push(`<tr>${cells.join('')}</tr>`);
    }
    if (rows > shownRows) body.push(`<tr><td colspan="${shownCols + 1}" style="text-align:center">⋯ ${rows - shownRows} more rows</td></tr>`);
    grid = `<table class="sharelora-tensor" style="font-size:12px;font-variant-numeric:tabular-nums">${body.join('')}</table>`;
  } else {
    grid = `<pre>${escapeHtml(text.split('\n').slice(1).join('\n'))}</pre>`;
  }
  return { data: { 'text/plain': text, 'text/html': `<div><code>${escapeHtml(head)}</code>${grid}</div>` }, metadata: {} };
}
