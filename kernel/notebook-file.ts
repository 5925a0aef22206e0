/**
 * Reading and writing .ipynb files (nbformat 4) the way Python's nbformat
 * does, so a notebook the runner saved diffs cleanly against one saved by
 * Jupyter or nbconvert: keys sorted, one-space indent, non-ASCII kept,
 * multi-line text split into lists of lines, a trailing newline.
 */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { readTextFile } from '../src/util/read-file.js';

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

/** Ten times the largest notebook Jupyter saves with every figure's plotly.js inline; JSON.parse needs several times this. */
export const MAX_NOTEBOOK_BYTES = 256 << 20;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'string' ? 'a string' : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`);
const isText = (v: unknown) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
/** nbformat 4.5's cell id pattern. */
export const CELL_ID = /^[a-zA-Z0-9-_]{1,64}$/;

/**
 * nbformat 4's shape, as far as the runner relies on it, with an error naming
 * the file, the cell and the field: a string where an object belongs would
 * otherwise fail deep inside a run (or hang it), and a source that is not text
 * would be written back emptied.
 */
export function validateNotebook(nb: unknown, file: string): asserts nb is Notebook {
  const bad = (where: string, field: string, v: unknown, expected: string) => new NotebookFormatError(file, `${where}"${field}" is ${describe(v)}; expected ${expected}`);
  if (!isObject(nb)) throw new NotebookFormatError(file, `the file holds ${describe(nb)}; expected a notebook object`);
  if (!Array.isArray(nb.cells)) throw new NotebookFormatError(file, 'no "cells" list');
  if (nb.nbformat !== 4) throw new NotebookFormatError(file, `nbformat ${JSON.stringify(nb.nbformat)}; only nbformat 4 is supported (jupyter nbconvert --to notebook converts older files)`);
  if (nb.nbformat_minor !== undefined && !(Number.isInteger(nb.nbformat_minor) && (nb.nbformat_minor as number) >= 0)) throw bad('', 'nbformat_minor', nb.nbformat_minor, 'an integer ≥ 0');
  if (nb.metadata !== undefined && !isObject(nb.metadata)) throw bad('', 'metadata', nb.metadata, 'an object');
  const spec = isObject(nb.metadata) ? nb.metadata.kernelspec : undefined;
  if (spec !== undefined && !isObject(spec)) throw bad('', 'metadata.kernelspec', spec, 'an object');
  for (const [i, c] of nb.cells.entries()) {
    if (!isObject(c)) throw new NotebookFormatError(file, `cell ${i} is ${describe(c)}; expected a cell object`);
    const type = c.cell_type;
    if (type !== 'code' && type !== 'markdown' && type !== 'raw') throw new NotebookFormatError(file, `cell ${i} has cell_type ${JSON.stringify(type)}; expected "code", "markdown" or "raw"`);
    const where = `cell ${i} (${type}): `;
    if (c.id !== undefined && !(typeof c.id === 'string' && CELL_ID.test(c.id))) throw bad(where, 'id', c.id, '1 to 64 letters, digits, - or _');
    if (c.metadata !== undefined && !isObject(c.metadata)) throw bad(where, 'metadata', c.metadata, 'an object');
    if (isObject(c.metadata) && c.metadata.tags !== undefined && !(Array.isArray(c.metadata.tags) && c.metadata.tags.every((t) => typeof t === 'string'))) throw bad(where, 'metadata.tags', c.metadata.tags, 'a list of strings');
    if (!isText(c.source)) throw bad(where, 'source', c.source, 'a string or a list of strings');
    if (type === 'code') {
      if (c.outputs !== undefined && !Array.isArray(c.outputs)) throw bad(where, 'outputs', c.outputs, 'a list');
      if (c.execution_count !== undefined && c.execution_count !== null && !Number.isInteger(c.execution_count)) throw bad(where, 'execution_count', c.execution_count, 'an integer or null');
    } else if (c.attachments !== undefined && !isObject(c.attachments)) {
      throw bad(where, 'attachments', c.attachments, 'an object');
    }
  }
}

/** Read through the guarded reader (no FIFO or device, a size cap), parsed and validated. */
export function readNotebook(file: string): Notebook {
  const fail = (f: string, problem: string) => new NotebookFormatError(f, problem);
  const text = readTextFile(file, { maxBytes: MAX_NOTEBOOK_BYTES, what: 'the notebook', fail });
  let nb: unknown;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new NotebookFormatError(file, `not JSON (${(e as Error).message})`);
  }
  validateNotebook(nb, file);
  nb.metadata ??= {};
  for (const c of nb.cells) {
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
  try {
    writeFileSync(tmp, serializeNotebook(nb), { flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** A cell id as nbformat 4.5 makes them. */
export function newCellId(): string {
  return randomBytes(4).toString('hex');
}

/**
 * Gives every cell without one (or with the id of an earlier cell) an id, unique in the notebook, and raises
 * nbformat_minor to 5 (the version that has ids). Jupyter warns about a cell
 * without an id (MissingIDFieldWarning) and will refuse one. Mutates `nb`.
 * @returns how many ids were added
 */
export function addCellIds(nb: Notebook): number {
  const used = new Set(nb.cells.map((c) => c.id).filter((id): id is string => typeof id === 'string'));
  const seen = new Set<string>();
  let added = 0;
  for (const c of nb.cells) {
    // a repeated id (a copied cell) is replaced in the later cell, as nbformat's validator repairs it
    if (typeof c.id === 'string' && c.id !== '' && !seen.has(c.id)) {
      seen.add(c.id);
      continue;
    }
    let id = newCellId();
    while (used.has(id)) id = newCellId();
    used.add(id);
    seen.add(id);
    c.id = id;
    added++;
  }
  if (!(nb.nbformat_minor >= 5)) nb.nbformat_minor = 5;
  return added;
}
