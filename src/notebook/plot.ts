/**
 * plot.line / scatter / bar / heatmap / history return a Figure; showing it
 * (last expression of a cell, or display(fig)) renders it, plot.save writes it.
 *
 * @example
 * plot.line({ loss: [3.1, 2.4, 2.0] }, { title: 'loss' })
 * plot.line(trainer.history, { x: 'step', y: ['loss', 'evalLoss'] })
 * plot.history(trainer.history)
 * await plot.save(fig, 'loss.png')
 */
import { writeFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { Figure, type Layout, type Trace } from './figure.js';
import { isArqueroTable, isNumericArray, isPlainObject, isRecordArray, numericColumn, toColumns, describeType } from './columns.js';
import { renderFigureImage } from './chromium.js';
import { standaloneHtml } from './plotly-html.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { isTensorLike } from './tensor.js';

export interface PlotOptions {
  title?: string;
  /** column for the x axis when the data is a table or records; default: row index */
  x?: string;
  /** column(s) to plot when the data is a table or records; default: every numeric column except x */
  y?: string | string[];
  xTitle?: string;
  yTitle?: string;
  logY?: boolean;
  width?: number;
  height?: number;
}

const PLOT_KEYS = optionKeys<PlotOptions>()(['title', 'x', 'y', 'xTitle', 'yTitle', 'logY', 'width', 'height']);

type Series = { name: string; x: (number | string | null)[] | undefined; y: (number | null)[] };

function toNumbers(v: ArrayLike<unknown>, what: string): (number | null)[] {
  return Array.from(v, (x) => {
    if (x === null || x === undefined) return null;
    if (typeof x !== 'number') throw new TypeError(`${what}: expected numbers; found ${describeType(x)}`);
    return Number.isFinite(x) ? x : null;
  });
}

/** Every accepted input shape for line/scatter, reduced to named series. */
function toSeries(data: unknown, opts: PlotOptions, what: string): Series[] {
  if (isTensorLike(data)) {
    if (data.shape.length !== 1) throw new RangeError(`${what}: a tensor must be 1-D (got shape [${data.shape.join(', ')}]); slice or reshape it first`);
    data = data.arraySync();
  }
  if (isNumericArray(data)) return [{ name: opts.y && typeof opts.y === 'string' ? opts.y : 'y', x: undefined, y: toNumbers(data, what) }];
  if (isArqueroTable(data) || isRecordArray(data)) {
    const cols = toColumns(data, what);
    const x = opts.x === undefined ? undefined : numericOrLabels(cols.column(opts.x), opts.x, cols.names, what);
    const ys = opts.y === undefined
      ? cols.names.filter((n) => n !== opts.x && isNumericColumn(cols.column(n)))
      : Array.isArray(opts.y) ? opts.y : [opts.y];
    if (ys.length === 0) throw new RangeError(`${what}: no numeric columns to plot; pass { y: 'column' } (columns: ${cols.names.join(', ')})`);
    return ys.map((name) => ({ name, x, y: numericColumn(cols, name, what) }));
  }
  if (isPlainObject(data) && Object.values(data).every((v) => isNumericArray(v) || isTensorLike(v))) {
    return Object.entries(data).map(([name, v]) => ({
      name, x: undefined, y: toNumbers(isTensorLike(v) ? (v.arraySync() as number[]) : (v as ArrayLike<number>), `${what} series "${name}"`),
    }));
  }
  throw new TypeError(`${what}: expected numbers (array, typed array or 1-D tensor), an object of named number arrays, an arquero table or an array of records; got ${describeType(data)}`);
}

function isNumericColumn(col: ArrayLike<unknown>): boolean {
  let seen = false;
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'number') return false;
    seen = true;
  }
  return seen;
}

function numericOrLabels(col: ArrayLike<unknown>, name: string, names: string[], what: string): (number | string | null)[] {
  if (!names.includes(name)) throw new RangeError(`${what}: no column "${name}"; the columns are ${names.map((n) => `"${n}"`).join(', ')}`);
  return Array.from(col, (v) => (v === null || v === undefined ? null : typeof v === 'number' || typeof v === 'string' ? v : String(v)));
}

function layoutFor(opts: PlotOptions, extra: Layout = {}): Layout {
  const layout: Layout = {
    margin: { l: 60, r: 20, t: opts.title ? 50 : 20, b: 50 },
    xaxis: { title: { text: opts.xTitle ?? opts.x ?? '' } },
    yaxis: { title: { text: opts.yTitle ?? '' }, type: opts.logY ? 'log' : 'linear' },
    ...extra,
  };
  if (opts.title) layout.title = { text: opts.title };
  if (opts.width) layout.width = opts.width;
  if (opts.height) layout.height = opts.height;
  return layout;
}

function xy(data: unknown, opts: PlotOptions, mode: string, what: string): Figure {
  const series = toSeries(data, opts, what);
  const traces: Trace[] = series.map((s) => ({
    type: 'scatter', mode, name: s.name, y: s.y, x: s.x ?? s.y.map((_, i) => i),
  }));
  return new Figure(traces, layoutFor(opts, { showlegend: traces.length > 1 }));
}

export function line(data: unknown, opts: PlotOptions = {}): Figure {
  checkOptions('plot.line', opts, PLOT_KEYS);
  return xy(data, opts, 'lines', 'plot.line');
}

export function scatter(data: unknown, opts: PlotOptions = {}): Figure {
  checkOptions('plot.scatter', opts, PLOT_KEYS);
  return xy(data, opts, 'markers', 'plot.scatter');
}

/**
 * Bars from {label: value}, numbers (labelled by index), or a table with
 * { x: labelColumn, y: valueColumn(s) }.
 */
export function bar(data: unknown, opts: PlotOptions = {}): Figure {
  checkOptions('plot.bar', opts, PLOT_KEYS);
  const what = 'plot.bar';
  let traces: Trace[];
  if (isPlainObject(data) && Object.values(data).every((v) => typeof v === 'number')) {
    traces = [{ type: 'bar', x: Object.keys(data), y: Object.values(data) }];
  } else if (isNumericArray(data) || isTensorLike(data)) {
    const y = isTensorLike(data) ? toNumbers(data.arraySync() as number[], what) : toNumbers(data, what);
    traces = [{ type: 'bar', x: y.map((_, i) => i), y }];
  } else if (isArqueroTable(data) || isRecordArray(data)) {
    if (!opts.x) throw new TypeError(`${what}: with a table, pass { x: 'labelColumn', y: 'valueColumn' }`);
    traces = toSeries(data, opts, what).map((s) => ({ type: 'bar', name: s.name, x: s.x, y: s.y }));
  } else {
    throw new TypeError(`${what}: expected {label: number}, numbers, an arquero table or an array of records; got ${describeType(data)}`);
  }
  return new Figure(traces, layoutFor(opts, { showlegend: traces.length > 1, barmode: 'group' }));
}

export interface HeatmapOptions extends PlotOptions {
  /** labels along the columns / rows */
  xLabels?: (string | number)[];
  yLabels?: (string | number)[];
  colorscale?: string;
}

/** z as number[][] (rows) or a 2-D tensor, e.g. an attention map or A·Aᵀ. */
export function heatmap(z: unknown, opts: HeatmapOptions = {}): Figure {
  checkOptions('plot.heatmap', opts, optionKeys<HeatmapOptions>()([...PLOT_KEYS as Array<keyof PlotOptions>, 'xLabels', 'yLabels', 'colorscale']));
  const what = 'plot.heatmap';
  let rows: unknown = z;
  if (isTensorLike(z)) {
    if (z.shape.length !== 2) throw new RangeError(`${what}: a tensor must be 2-D (got shape [${z.shape.join(', ')}])`);
    rows = z.arraySync();
  }
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => isNumericArray(r))) {
    throw new TypeError(`${what}: expected a non-empty number[][] (one array per row) or a 2-D tensor; got ${describeType(z)}`);
  }
  const zz = (rows as ArrayLike<number>[]).map((r, i) => toNumbers(r, `${what} row ${i}`));
  const trace: Trace = { type: 'heatmap', z: zz, colorscale: opts.colorscale ?? 'Viridis' };
  if (opts.xLabels) trace.x = opts.xLabels;
  if (opts.yLabels) trace.y = opts.yLabels;
  return new Figure([trace], layoutFor(opts, { yaxis: { title: { text: opts.yTitle ?? '' }, autorange: 'reversed' } }));
}

/**
 * Train and eval loss curves from a Trainer, its history table, or records
 * with columns step, loss and optionally evalLoss (only rows where an
 * evaluation ran carry it).
 */
export function history(h: unknown, opts: PlotOptions = {}): Figure {
  checkOptions('plot.history', opts, PLOT_KEYS);
  const what = 'plot.history';
  const source = typeof h === 'object' && h !== null && 'history' in h && isArqueroTable((h as { history: unknown }).history)
    ? (h as { history: unknown }).history : h;
  const cols = toColumns(source, what);
  for (const need of ['step', 'loss']) {
    if (!cols.names.includes(need)) {
      throw new RangeError(`${what}: expected a training history with columns step, loss (and optionally evalLoss); missing "${need}" in ${cols.names.join(', ') || '(no columns)'}`);
    }
  }
  const step = numericColumn(cols, 'step', what);
  const traces: Trace[] = [{ type: 'scatter', mode: 'lines', name: 'train loss', x: step, y: numericColumn(cols, 'loss', what) }];
  if (cols.names.includes('evalLoss')) {
    const ev = numericColumn(cols, 'evalLoss', what);
    const keep = ev.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
    if (keep.length > 0) {
      traces.push({ type: 'scatter', mode: 'lines+markers', name: 'eval loss', x: keep.map((i) => step[i]), y: keep.map((i) => ev[i]) });
    }
  }
  return new Figure(traces, layoutFor({ xTitle: 'step', yTitle: 'loss', ...opts }, { showlegend: traces.length > 1 }));
}

/**
 * Write a figure as .png or .svg (headless Chromium) or a standalone .html
 * (plotly.js inlined, works offline). Resolves to the absolute path written.
 */
export async function save(fig: Figure, path: string, opts: { width?: number; height?: number; scale?: number } = {}): Promise<string> {
  checkOptions('plot.save', opts, ['width', 'height', 'scale']);
  if (!(fig instanceof Figure)) throw new TypeError(`plot.save: expected a Figure from plot.line/scatter/bar/heatmap/history; got ${describeType(fig)}`);
  if (typeof path !== 'string' || path === '') throw new TypeError('plot.save: expected a file path ending in .png, .svg or .html');
  const ext = extname(path).toLowerCase();
  const out = resolve(path);
  if (ext === '.html' || ext === '.htm') {
    const title = (fig.layout.title as { text?: string } | undefined)?.text;
    await writeFile(out, standaloneHtml(fig.toJSON(), title));
  } else if (ext === '.png') {
    await writeFile(out, Buffer.from(await renderFigureImage(fig.toJSON(), { format: 'png', scale: 2, ...opts }), 'base64'));
  } else if (ext === '.svg') {
    await writeFile(out, await renderFigureImage(fig.toJSON(), { format: 'svg', ...opts }));
  } else {
    throw new RangeError(`plot.save: unsupported file extension "${ext || '(none)'}" in ${path}; expected .png, .svg or .html`);
  }
  return out;
}
