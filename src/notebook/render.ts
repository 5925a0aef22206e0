/**
 * Value → MIME bundle, used for a cell's last expression and for display().
 * Values that implement the protocol render themselves; arquero tables,
 * tfjs tensors, Trainers, data-set splits and promises get built-in views;
 * everything else is text.
 */
import { inspect } from 'node:util';
import { Html, MIME_BUNDLE, Markdown, isDisplayable, type DisplayOutput, type RenderOptions } from './mime.js';
import { isArqueroTable } from './columns.js';
import { isTensorLike, tensorOutput } from './tensor.js';
import { table } from './table.js';
import { history } from './plot.js';
import { plotlyLoaderOutput } from './plotly-html.js';
import { session } from './session.js';
import { isPromise, promiseOutput, promiseText } from './promise.js';
import { isSplit, isSplitGroup, splitOutput, withTableSummaries } from './dataset.js';

/** A Trainer (or anything) carrying an arquero history with step and loss columns. */
function hasTrainingHistory(v: unknown): v is { history: unknown } {
  if (typeof v !== 'object' || v === null || !('history' in v)) return false;
  const h = (v as { history: unknown }).history;
  return isArqueroTable(h) && h.columnNames().includes('step') && h.columnNames().includes('loss') && h.numRows() > 0;
}

/** Node REPL style: a string shows quoted, so "42" and 42 look different. */
export function textOutput(value: unknown): DisplayOutput {
  return { data: { 'text/plain': inspect(withTableSummaries(value), { depth: 4, maxArrayLength: 50, breakLength: 100 }) }, metadata: {} };
}

/** The text form, synchronously: for consoles and for display() outside a notebook. */
export function plainText(value: unknown): string {
  if (isArqueroTable(value)) return table(value).text;
  if (isTensorLike(value)) return tensorOutput(value).data['text/plain'] as string;
  if (isPromise(value)) return promiseText(value);
  if (isSplit(value) || isSplitGroup(value)) return splitOutput(value).data['text/plain'] as string;
  if (isDisplayable(value) && Object.prototype.hasOwnProperty.call(Object.getPrototypeOf(value), 'toString')) return String(value);
  if (value instanceof Html || value instanceof Markdown) return value instanceof Html ? value.text : value.markdown;
  return typeof value === 'string' ? value : textOutput(value).data['text/plain'] as string;
}

export async function renderValue(value: unknown, options: RenderOptions = {}): Promise<DisplayOutput> {
  if (isDisplayable(value)) return await value[MIME_BUNDLE](options);
  if (isArqueroTable(value)) return table(value)[MIME_BUNDLE]();
  if (isTensorLike(value)) return tensorOutput(value);
  if (isPromise(value)) return promiseOutput(value);
  if (isSplit(value) || isSplitGroup(value)) return splitOutput(value);
  if (hasTrainingHistory(value)) return renderValue(history(value), options);
  return textOutput(value);
}

/**
 * The outputs to send for one value. The first figure of a session also
 * carries plotly.js: inside its own html normally, or as a separate output
 * first when it is `updatable`, since an update replaces the whole bundle and
 * would otherwise drop the library (or resend 4.8 MB per refresh).
 */
export async function outputsFor(value: unknown, options: RenderOptions = {}, updatable = false): Promise<DisplayOutput[]> {
  const out = await renderValue(value, options);
  const s = session();
  if (!out.needsPlotly || s.plotlySent) return [out];
  s.plotlySent = true;
  if (updatable) return [plotlyLoaderOutput(), out];
  const loader = plotlyLoaderOutput().data['text/html'] as string;
  return [{ ...out, data: { ...out.data, 'text/html': `${loader}\n${out.data['text/html'] as string}` } }];
}
