/**
 * Reading and writing .ipynb files (nbformat 4) the way Python's nbformat
 * does, so a notebook the runner saved diffs cleanly against one saved by
 * Jupyter or nbconvert: keys sorted, one-space indent, non-ASCII kept,
 * multi-line text split into lists of lines, a trailing newline.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

export type MultilineString = string | string[];

export interface StreamOutput { output_type: 'stream'; name: 'stdout' | 'stderr'; text: MultilineString }
export interface DisplayDataOutput { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
export interface ExecuteResultOutput { output_type: 'execute_result'; data: Record<string, unknown>; metadata: Record<string, unknown>; execution_count: number | null }
export interface ErrorOutput { output_type: 'error'; ename: string; evalue: string; traceback: string[] }
export type Output = StreamOutput | DisplayDataOutput | ExecuteResultOutput | ErrorOutput;

export interface CodeCell {
  cell_type: 'code';
  id?: string;
  metadata: Record<string, unknown> & { tags?: string[] };
  source: MultilineString;
  outputs: Output[];
  execution_count: number | null;
}
export interface TextCell {
  cell_type: 'markdown' | 'raw';
  id?: string;
  metadata: Record<string, unknown> & { tags?: string[] };
  source: MultilineString;
  attachments?: Record<string, Record<string, unknown>>;
}
export type NotebookCell = CodeCell | TextCell;

export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown> & { kernelspec?: { name?: string; display_name?: string; language?: string } };
  nbformat: number;
  nbformat_minor: number;
}

export class NotebookFormatError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: not a notebook this runner can execute: ${why}`);
    this.name = 'NotebookFormatError';
  }
}

export function joinSource(s: MultilineString | undefined): string {
  return Array.isArray(s) ? s.join('') : (s ?? '');
}

/** Python's str.splitlines(keepends=True), which nbformat uses: the same line breaks, the same pieces. */
export function splitLines(s: string): string[] {
  const out: string[] = [];
  const re = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/g;
  let start = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    out.push(s.slice(start, m.index + m[0].length));
    start = m.index + m[0].length;
  }
  if (start < s.length) out.push(s.slice(start));
  return out;
}

/** Only text is split: JSON MIME types are objects, and base64 images stay one string (as nbformat does). */
function splitMime(mime: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return mime.startsWith('text/') || mime === 'application/javascript' || mime === 'image/svg+xml' ? splitLines(value) : value;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) out[k] = sortKeys(x);
  }
  return out;
}

/** nbformat.writes: the file's text. */
export function serializeNotebook(nb: Notebook): string {
  const cells = nb.cells.map((c) => {
    const cell: Record<string, unknown> = { ...c, source: splitLines(joinSource(c.source)) };
    if (c.cell_type === 'code') {
      cell.outputs = c.outputs.map((o) => {
        if (o.output_type === 'stream') return { ...o, text: splitLines(joinSource(o.text)) };
        if (o.output_type === 'display_data' || o.output_type === 'execute_result') {
          return { ...o, data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, splitMime(k, v)])) };
        }
        return o;
      });
    }
    return cell;
  });
  // Python's json escapes nothing above U+001F with ensure_ascii=False; JSON.stringify agrees.
  return `${JSON.stringify(sortKeys({ ...nb, cells }), null, 1)}\n`;
}

export function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(readFileSync(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new NotebookFormatError(file, (e as Error).message);
  }
  if (typeof nb !== 'object' || nb === null || !Array.isArray(nb.cells)) throw new NotebookFormatError(file, 'no "cells" list');
  if (nb.nbformat !== 4) throw new NotebookFormatError(file, `nbformat ${nb.nbformat}; only nbformat 4 is supported (jupyter nbconvert --to notebook converts older files)`);
  nb.metadata ??= {};
  for (const [i, c] of nb.cells.entries()) {
    if (c.cell_type !== 'code' && c.cell_type !== 'markdown' && c.cell_type !== 'raw') throw new NotebookFormatError(file, `cell ${i} has cell_type ${JSON.stringify((c as { cell_type: unknown }).cell_type)}`);
    c.metadata ??= {};
    if (c.cell_type === 'code') {
      c.outputs ??= [];
      c.execution_count ??= null;
    }
  }
  return nb;
}

/** Written next to the target and renamed over it, so an interrupted write never leaves half a notebook. */
export function writeNotebook(file: string, nb: Notebook): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, serializeNotebook(nb));
  renameSync(tmp, file);
}

/** A cell id as nbformat 4.5 makes them. */
export function newCellId(): string {
  return randomBytes(4).toString('hex');
}
