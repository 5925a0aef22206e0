/**
 * The tabular inputs the display helpers accept (an arquero table, an array of
 * records, or an object of equal-length arrays), reduced to named columns.
 */

/** The part of arquero's Table API we read; duck-typed so any arquero copy works. */
export interface ArqueroLike {
  numRows(): number;
  numCols(): number;
  columnNames(): string[];
  array(name: string): ArrayLike<unknown>;
  objects(options?: { limit?: number; offset?: number }): object[];
}

export interface Columns {
  names: string[];
  numRows: number;
  /** values of one column, in row order */
  column(name: string): ArrayLike<unknown>;
  /** row objects for rows [offset, offset + limit) */
  rows(offset: number, limit: number): Record<string, unknown>[];
}

export function isArqueroTable(v: unknown): v is ArqueroLike {
  const t = v as Partial<ArqueroLike> | null;
  return typeof t === 'object' && t !== null && typeof t.columnNames === 'function'
    && typeof t.numRows === 'function' && typeof t.objects === 'function' && typeof t.array === 'function';
}

export function isRecordArray(v: unknown): v is Record<string, unknown>[] {
  return Array.isArray(v) && v.length > 0 && v.every(isPlainObject);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function isNumericArray(v: unknown): v is ArrayLike<number> {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return true;
  return Array.isArray(v) && v.every((x) => typeof x === 'number' || x === null);
}

/** An object whose values are all arrays of one length, e.g. {loss: [...], evalLoss: [...]}. */
function isColumnObject(v: unknown): v is Record<string, ArrayLike<unknown>> {
  if (!isPlainObject(v)) return false;
  const vals = Object.values(v);
  return vals.length > 0 && vals.every((c) => Array.isArray(c) || (ArrayBuffer.isView(c) && !(c instanceof DataView)))
    && vals.every((c) => (c as ArrayLike<unknown>).length === (vals[0] as ArrayLike<unknown>).length);
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty array' : `an array of ${describeType(v[0])}`;
  if (typeof v === 'object') return `an object of class ${(v as object).constructor?.name ?? 'null-prototype'}`;
  return typeof v;
}

/**
 * @param what names the caller in the error, e.g. "table()".
 * @throws TypeError naming the accepted shapes when `input` is none of them.
 */
export function toColumns(input: unknown, what: string): Columns {
  if (isArqueroTable(input)) {
    return {
      names: input.columnNames(),
      numRows: input.numRows(),
      column: (name) => input.array(name),
      rows: (offset, limit) => input.objects({ offset, limit }) as Record<string, unknown>[],
    };
  }
  if (Array.isArray(input) && input.length === 0) {
    return { names: [], numRows: 0, column: () => [], rows: () => [] };
  }
  if (isRecordArray(input)) {
    const names: string[] = [];
    const seen = new Set<string>();
    for (const row of input) {
      for (const k of Object.keys(row)) if (!seen.has(k)) { seen.add(k); names.push(k); }
    }
    return {
      names,
      numRows: input.length,
      column: (name) => input.map((r) => r[name]),
      rows: (offset, limit) => input.slice(offset, offset + limit),
    };
  }
  if (isColumnObject(input)) {
    const names = Object.keys(input);
    const n = input[names[0]!]!.length;
    return {
      names,
      numRows: n,
      column: (name) => input[name] ?? [],
      rows: (offset, limit) => {
        const out: Record<string, unknown>[] = [];
        for (let i = offset; i < Math.min(n, offset + limit); i++) {
          out.push(Object.fromEntries(names.map((k) => [k, input[k]![i]])));
        }
        return out;
      },
    };
  }
  throw new TypeError(`${what}: expected an arquero table, an array of records (plain objects) or an object of equal-length arrays; got ${describeType(input)}`);
}

/** Column values as numbers (null for missing), for plotting. */
export function numericColumn(cols: Columns, name: string, what: string): (number | null)[] {
  if (!cols.names.includes(name)) {
    throw new RangeError(`${what}: no column "${name}"; the columns are ${cols.names.map((n) => `"${n}"`).join(', ') || '(none)'}`);
  }
  return Array.from(cols.column(name), (v) => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'bigint') return Number(v);
    if (v instanceof Date) return v.getTime();
    throw new TypeError(`${what}: column "${name}" must hold numbers; found ${describeType(v)}`);
  });
}
