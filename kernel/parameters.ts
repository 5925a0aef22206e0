/**
 * Papermill's convention for notebook parameters, for TypeScript cells: the
 * cell tagged `parameters` declares the defaults, and the values given on the
 * command line go into a new cell right after it, tagged
 * `injected-parameters`, which re-declares them. tslab lets a later cell
 * re-declare a top-level name, so every cell below sees the new values.
 *
 * Unlike papermill, a name the parameters cell does not declare is an error
 * (a typo would otherwise run the whole notebook with the default), and the
 * re-declaration keeps the default's keyword and type annotation, so a value
 * of the wrong type fails to type-check in the injected cell itself.
 */
import { createRequire } from 'node:module';
import type * as TS from '@tslab/typescript-for-tslab';
import { joinSource, newCellId, type CodeCell, type Notebook } from './notebook-file.js';

const require = createRequire(import.meta.url);
const tslabDir = require.resolve('tslab/package.json').replace(/package\.json$/, '');
/** The compiler tslab itself runs cells with, so "what is declared" agrees with what runs. */
const ts = createRequire(`${tslabDir}package.json`)('@tslab/typescript-for-tslab') as typeof TS;

export const PARAMETERS_TAG = 'parameters';
export const INJECTED_TAG = 'injected-parameters';

export class ParameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParameterError';
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * `name=value` pairs from `-p` flags. A value is JSON when it parses as JSON
 * (numbers, true/false/null, quoted strings, arrays, objects), else the raw string.
 */
export function parseParameterArgs(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ParameterError(`-p expects name=value; got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    if (!IDENTIFIER.test(name)) throw new ParameterError(`-p ${name}: not a TypeScript identifier`);
    // own keys only: `constructor` or `toString` is not "given twice" because Object.prototype has it
    if (Object.hasOwn(out, name)) throw new ParameterError(`-p ${name} is given twice`);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    const where = nonFinite(value);
    if (where !== undefined) {
      throw new ParameterError(`-p ${name}=${raw}: ${where ? `${where} is` : 'is'} a number too large for a double (it would be Infinity, which the injected cell cannot hold); expected a finite number`);
    }
    // defineProperty: a name like __proto__ is a parameter, not the object's prototype
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The path to the first non-finite number in a parsed JSON value ('' for the value itself), or undefined. */
function nonFinite(v: unknown, path = ''): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path;
  if (typeof v !== 'object' || v === null) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const found = nonFinite(x, Array.isArray(v) ? `${path}[${k}]` : `${path}.${k}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

export interface Declared {
  keyword: 'const' | 'let' | 'var';
  /** the type annotation's source text, if the default has one */
  type?: string;
}

/** The top-level names a cell declares with const/let/var, in order. */
export function declaredNames(code: string): Map<string, Declared> {
  const sf = ts.createSourceFile('parameters.ts', code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const names = new Map<string, Declared>();
  for (const stmt of sf.statements) {
    if (!ts.isVariableStatement(stmt)) continue;
    const flags = stmt.declarationList.flags;
    const keyword = flags & ts.NodeFlags.Const ? 'const' : flags & ts.NodeFlags.Let ? 'let' : 'var';
    for (const d of stmt.declarationList.declarations) {
      // Destructuring patterns declare several names at once; a parameter needs one name it can own.
      if (!ts.isIdentifier(d.name)) continue;
      names.set(d.name.text, { keyword, type: d.type?.getText(sf) });
    }
  }
  return names;
}

/** JSON is valid TypeScript, except that U+2028/9 inside strings confuse older parsers. */
function literal(v: unknown): string {
  // JSON.stringify writes Infinity and NaN as null: a value that would silently change
  if (nonFinite(v) !== undefined) throw new ParameterError(`cannot write ${String(v)} as a literal: not a finite number`);
  const s = JSON.stringify(v);
  if (s === undefined) throw new ParameterError(`cannot write ${String(v)} as a literal`);
  return s.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function injectedSource(params: Record<string, unknown>, declared: Map<string, Declared>): string {
  const lines = ['// Injected parameters (sharelora run -p)'];
  for (const [name, value] of Object.entries(params)) {
    const d = declared.get(name)!;
    lines.push(`${d.keyword} ${name}${d.type ? `: ${d.type}` : ''} = ${literal(value)};`);
  }
  return lines.join('\n');
}

const hasTag = (cell: { metadata: { tags?: unknown } }, tag: string) => Array.isArray(cell.metadata.tags) && cell.metadata.tags.includes(tag);

/**
 * Removes the injected cell of an earlier run and, when there are values,
 * inserts a new one after the `parameters` cell. Mutates `nb`.
 * @returns the index of the injected cell, or undefined when nothing was injected
 */
export function injectParameters(nb: Notebook, params: Record<string, unknown>): number | undefined {
  nb.cells = nb.cells.filter((c) => !hasTag(c, INJECTED_TAG));
  const names = Object.keys(params);
  if (names.length === 0) return undefined;
  const tagged = nb.cells.map((c, i) => (hasTag(c, PARAMETERS_TAG) ? i : -1)).filter((i) => i >= 0);
  if (tagged.length === 0) {
    throw new ParameterError(`-p ${names.join(', ')}: the notebook has no cell tagged "${PARAMETERS_TAG}" to declare defaults (add the tag to the cell that declares them)`);
  }
  if (tagged.length > 1) throw new ParameterError(`cells ${tagged.join(' and ')} are both tagged "${PARAMETERS_TAG}"; tag only one`);
  const at = tagged[0]!;
  const cell = nb.cells[at]!;
  if (cell.cell_type !== 'code') throw new ParameterError(`cell ${at}, tagged "${PARAMETERS_TAG}", is a ${cell.cell_type} cell, not code`);
  const declared = declaredNames(joinSource(cell.source));
  const unknown = names.filter((n) => !declared.has(n));
  if (unknown.length) {
    const known = [...declared.keys()];
    throw new ParameterError(`-p ${unknown.join(', ')}: not declared in the parameters cell (cell ${at}), which declares ${known.length ? known.join(', ') : 'nothing'}`);
  }
  const injected: CodeCell = {
    cell_type: 'code',
    id: newCellId(),
    metadata: { tags: [INJECTED_TAG] },
    source: injectedSource(params, declared),
    outputs: [],
    execution_count: null,
  };
  nb.cells.splice(at + 1, 0, injected);
  return at + 1;
}
