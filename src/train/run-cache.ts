/**
 * Results of training runs kept by key in a JSON-lines file, one home for
 * what runProtocol and runGrid share: a run whose key is in the file is read
 * back instead of trained, so a notebook that is run again, or cut by a time
 * limit, only trains what is missing. With SHARELORA_SHARD=i/n several
 * processes split the runs: each claims a run before training it (a claim
 * file made with O_EXCL under `<file>.claims/<SHARELORA_SHARD_SESSION>/`, so
 * the claims of a call that was cut off do not block the next session), and
 * every process waits for the others' rows, so each ends with the whole table.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { OptionsError } from '../util/options.js';
import { flags } from '../backend/flags.js';
import { assertGpuHealthy } from '../backend/index.js';

/** JSON with sorted keys, so a configuration's key does not depend on the order its fields were written in */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** a run's key in the results file: a hash of everything that defines it */
export function runKey(v: unknown): string {
  return createHash('sha256').update(stableJson(v)).digest('hex').slice(0, 24);
}

/**
 * `v` as plain JSON data for a key, so values that JSON would merge keep
 * distinct keys (a RegExp is not `{}`, NaN is not null); a function or class
 * instance cannot define a run reproducibly and is refused, naming `path`.
 */
export function plainKey(where: string, path: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : { $number: String(v) };
  if (v instanceof RegExp) return { $regexp: v.toString() };
  if (Array.isArray(v)) return v.map((x, i) => plainKey(where, `${path}[${i}]`, x));
  const proto = typeof v === 'object' ? Object.getPrototypeOf(v) : undefined;
  if (proto === Object.prototype || proto === null) return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, plainKey(where, `${path}.${k}`, x)]));
  throw new OptionsError(where, 'cache', `${path} is ${typeof v === 'function' ? 'a function' : typeof v === 'object' ? `a ${proto?.constructor?.name ?? 'class'} instance` : `a ${typeof v}`}, which cannot be part of a cache key: use plain data (numbers, strings, booleans, arrays, plain objects, RegExps)`);
}

export interface Shard { index: number; count: number; session: string }

/** this process's part of the runs, from SHARELORA_SHARD ("i/n"; unset: the only one) */
export function shardFromEnv(where: string): Shard {
  const s = flags.shard;
  if (!s) return { index: 0, count: 1, session: '' };
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || +m[2]! < 1 || +m[1]! >= +m[2]!) throw new OptionsError(where, 'SHARELORA_SHARD', `must be "i/n" with 0 ≤ i < n, got ${JSON.stringify(s)}`);
  return { index: +m[1]!, count: +m[2]!, session: flags.shardSession };
}

/** what every line of a results file has; callers add their own fields */
export interface CachedRun { key: string; metrics: object; seconds: number }

/**
 * The rows of a results file by key (a later line for a key replaces an
 * earlier one), each with its 0-based line number, and how many whole lines
 * the file had (a row appended later gets that line number or a larger one).
 */
export function readRuns<R extends CachedRun>(file: string | undefined): { runs: Map<string, { row: R; line: number }>; lines: number } {
  const out = new Map<string, { row: R; line: number }>();
  if (!file || !existsSync(file)) return { runs: out, lines: 0 };
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let row: R;
    // a line cut by a killed process is skipped (its run trains again); anything else malformed is an error
    try { row = JSON.parse(line) as R; } catch { if (i === lines.length - 1 || i === lines.length - 2) return; throw new Error(`${file}: line ${i + 1} is not JSON; the results file is damaged (delete the line to train that run again)`); }
    if (!row || typeof row.key !== 'string' || typeof row.metrics !== 'object' || row.metrics === null) throw new Error(`${file}: line ${i + 1} has no "key" or "metrics"`);
    out.set(row.key, { row, line: i });
  });
  return { runs: out, lines: lines.length - 1 };
}

export interface RunCacheOptions<R> {
  /** how long a shard waits for the others' rows, in seconds (default 3600) */
  waitSeconds?: number;
  /** rows already in the file when this call began that are trained again rather than read back (e.g. a failed run) */
  retry?: (row: R) => boolean;
}

/**
 * The runs of one call: those in the results file (`file`; undefined: none,
 * nothing is written) and those this process trained.
 */
export class RunCache<R extends CachedRun> {
  readonly shard: Shard;
  private fromFile: Map<string, R>;
  private readonly mine = new Map<string, R>();
  /** lines of the file when this call began: `retry` applies to rows before it only */
  private readonly startLines: number;

  constructor(private readonly where: string, private readonly file: string | undefined, private readonly o: RunCacheOptions<R> = {}) {
    this.shard = shardFromEnv(where);
    const { runs, lines } = readRuns<R>(file);
    this.startLines = lines;
    this.fromFile = this.keep(runs);
  }

  private keep(read: Map<string, { row: R; line: number }>): Map<string, R> {
    const out = new Map<string, R>();
    for (const [k, { row, line }] of read) if (!(line < this.startLines && this.o.retry?.(row))) out.set(k, row);
    return out;
  }

  /** the row for a key, this process's or the file's */
  get(key: string): R | undefined {
    return this.mine.get(key) ?? this.fromFile.get(key);
  }

  /** whether this process trains the run: always without shards or a file; otherwise only if no other shard has claimed it */
  claim(key: string): boolean {
    if (this.shard.count === 1 || !this.file) return true;
    const dir = join(`${this.file}.claims`, this.shard.session);
    mkdirSync(dir, { recursive: true });
    try { closeSync(openSync(join(dir, key), 'wx')); return true; } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false; throw e; }
  }

  /**
   * Keeps a finished run, and appends it to the file; refuses it if the GPU
   * device reported an error or was lost (its buffers may have read back
   * zeros), so no later call reads such a run back as a result.
   */
  async put(row: R): Promise<void> {
    await assertGpuHealthy(this.where, `run ${row.key} (metrics ${JSON.stringify(row.metrics).slice(0, 120)}) is not kept${this.file ? ` in ${this.file}` : ''}; `
      + 'finished runs are kept, and this one trains again when the notebook runs again');
    this.mine.set(row.key, row);
    if (this.file) {
      mkdirSync(dirname(this.file), { recursive: true });
      appendFileSync(this.file, JSON.stringify(row) + '\n');
    }
  }

  /** waits until every key has a row (other shards' runs appear in the file); `name` describes a run in the error when they do not */
  async waitFor(keys: readonly string[], name: (key: string) => string): Promise<void> {
    const waitSeconds = this.o.waitSeconds ?? 3600;
    const deadline = performance.now() + 1000 * waitSeconds;
    for (;;) {
      const missing = keys.filter((k) => !this.get(k));
      if (!missing.length) return;
      if (this.shard.count === 1) throw new Error(`${this.where}: ${missing.length} runs have no result`);
      if (performance.now() > deadline) throw new Error(`${this.where}: waited ${waitSeconds} s for ${missing.length} runs of other shards (first: ${name(missing[0]!)}); run the notebook again to train what is missing`);
      await new Promise((res) => setTimeout(res, 2000));
      this.fromFile = this.keep(readRuns<R>(this.file).runs);
    }
  }
}
