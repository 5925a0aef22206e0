/**
 * Two delimited-text dialects, with the starting line of every record kept so
 * errors can point at it:
 * - GLUE's TSVs are written with csv.QUOTE_NONE: a `"` is an ordinary character
 *   (MNLI and SST-2 are full of them), so no quote handling at all.
 * - HF / E2E CSVs follow RFC 4180: quoted fields may hold commas, `""` and newlines.
 */
import { DataError } from '../util/errors.js';
import { readDataText } from '../util/read-data.js';

export interface TextRecord {
  fields: string[];
  /** 1-based line where the record starts. */
  line: number;
}

export function readText(file: string): string {
  const text = readDataText(file);
  // Excel and the MRPC source files start with a byte-order mark that would glue onto the first column name.
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Tab-separated, no quoting; blank lines are skipped. */
export function parseTsv(text: string): TextRecord[] {
  const out: TextRecord[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > 0) out.push({ fields: line.split('\t'), line: i + 1 });
  });
  return out;
}

/** RFC 4180 CSV; a record that is one empty field (a blank line) is skipped. */
export function parseCsv(text: string, file: string, delimiter = ','): TextRecord[] {
  const out: TextRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let quoted = false;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '')) out.push({ fields, line: recordLine });
    fields = [];
    field = '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        const next = text[i + 1];
        if (next !== undefined && next !== delimiter && next !== '\n' && next !== '\r') {
          throw new DataError(file, `unexpected ${JSON.stringify(next)} after a closing quote; expected "${delimiter}" or end of line`, `line ${line}`);
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      i++;
      continue;
    }
    if (c === '"' && field.length === 0) quoted = true;
    else if (c === delimiter) {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else field += c;
    i++;
  }
  if (quoted) throw new DataError(file, 'a quoted field is never closed', `line ${recordLine}`);
  if (field.length > 0 || fields.length > 0) endRecord();
  return out;
}

/**
 * Header-addressed access: `column(name)` returns the index or throws a DataError
 * that lists the columns the file does have.
 */
export class Header {
  private readonly index = new Map<string, number>();
  constructor(readonly file: string, readonly names: string[], readonly line = 1) {
    names.forEach((n, i) => {
      if (!this.index.has(n)) this.index.set(n, i);
    });
  }
  has(name: string): boolean {
    return this.index.has(name);
  }
  column(name: string, why = ''): number {
    const i = this.index.get(name);
    if (i === undefined) {
      throw new DataError(this.file, `missing column "${name}"${why}; the header has ${JSON.stringify(this.names)}`, `line ${this.line}`);
    }
    return i;
  }
}

/** Throw unless the record has exactly the header's field count. */
export function checkWidth(file: string, rec: TextRecord, width: number): void {
  if (rec.fields.length !== width) {
    throw new DataError(file, `expected ${width} fields, found ${rec.fields.length}`, `line ${rec.line}`);
  }
}
