/**
 * Recipes: a module file exporting `async function run(config, ctx)` that
 * returns a run's metrics. The file travels to workers as its source text, so
 * it is always run from a copy written inside the sharelora package folder
 * (`.recipes/<sha256>.mjs`): there, `import ... from 'sharelora'` resolves to
 * the running library through Node's package self-reference, and other bare
 * imports resolve from the package's node_modules. In-process runs use the same
 * copy, so a recipe that works locally works on a worker.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { atomicWriteSync } from '../../util/fs.js';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkOptions } from '../../util/options.js';
import { metricsToWire } from './canonical.js';
import { metricNameProblem } from '../grid-rows.js';

/** 'path/to/recipe.mjs' (export `run`) or { module, export } */
export type RecipeSpec = string | { module: string; export?: string };

export interface Recipe {
  /** the file's name, for messages */
  file: string;
  export: string;
  /** sha256 of the source, hex */
  hash: string;
  source: string;
}

export interface RecipeContext {
  /** 0-based position of this run in its grid when it was queued */
  index: number;
  /** how many runs the grid has */
  total: number;
  grid: string;
  /** the job id ('in-process' ids are the same as the queue's) */
  jobId: string;
  /** 1 for the first try, 2 for the first retry, ... */
  attempt: number;
  /** 'in-process' or the worker's name (host:pid) */
  worker: string;
  /**
   * Report progress (a fraction in [0, 1] or a few named numbers/strings),
   * shown live by the grid. Await it between steps: it yields to the event
   * loop, where the worker renews its lock on the job and hears SIGTERM (on the
   * cpu backend a loop of awaited steps otherwise never lets them run).
   */
  progress(p: number | Record<string, number | string>): Promise<void>;
}

export type RecipeFunction = (config: Record<string, unknown>, ctx: RecipeContext) => unknown;

export function isRecipeSpec(v: unknown): v is RecipeSpec {
  return typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v) && 'module' in v);
}

/** Read a recipe file named by a spec (relative paths from the current folder). */
export function readRecipe(spec: RecipeSpec): Recipe {
  if (typeof spec !== 'string') {
    if (typeof spec !== 'object' || spec === null) throw new TypeError(`runGrid: a recipe is a module path or { module, export }; got ${JSON.stringify(spec)}`);
    checkOptions('runGrid recipe', spec, ['module', 'export']);
  }
  const file = typeof spec === 'string' ? spec : spec.module;
  const exportName = typeof spec === 'string' ? 'run' : spec.export ?? 'run';
  if (typeof file !== 'string' || file === '') throw new TypeError(`runGrid: the recipe module must be a file path; got ${JSON.stringify(file)}`);
  if (typeof exportName !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(exportName)) throw new TypeError(`runGrid: the recipe export must be an identifier; got ${JSON.stringify(exportName)}`);
  const path = resolve(file);
  if (!['.mjs', '.js'].includes(extname(path))) throw new TypeError(`runGrid: recipe ${file} must be an ES module file (.mjs or .js); TypeScript recipes must be compiled first`);
  if (!existsSync(path)) throw new Error(`runGrid: recipe ${file} not found (looked at ${path})`);
  const source = readFileSync(path, 'utf8');
  const rel = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\1/.exec(source);
  if (rel) {
    throw new Error(`runGrid: recipe ${basename(path)} imports '${rel[2]}'; a recipe travels to workers as one file, so it may import packages installed with sharelora ('sharelora', '@tensorflow/tfjs-core', node: modules) but not files beside it — inline that code`);
  }
  return { file: basename(path), export: exportName, hash: createHash('sha256').update(source).digest('hex'), source };
}

let pkgRoot: string | undefined;

/** The sharelora package folder that this code runs from. */
export function packageRoot(): string {
  if (pkgRoot) return pkgRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && JSON.parse(readFileSync(pj, 'utf8')).name === 'sharelora') return (pkgRoot = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('sharelora: cannot find the sharelora package folder above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const loaded = new Map<string, Promise<Record<string, unknown>>>();

/** Import a recipe's source (by hash, once per process) and return its run function. */
export async function recipeFunction(r: Recipe): Promise<RecipeFunction> {
  if (!/^[0-9a-f]{64}$/.test(r.hash) || createHash('sha256').update(r.source).digest('hex') !== r.hash) {
    throw new Error(`recipe ${r.file}: its source does not match its hash`);
  }
  let mod = loaded.get(r.hash);
  if (!mod) {
    mod = import(pathToFileURL(materialize(r)).href) as Promise<Record<string, unknown>>;
    loaded.set(r.hash, mod);
    mod.catch(() => loaded.delete(r.hash));
  }
  const fn = (await mod)[r.export];
  if (typeof fn !== 'function') {
    const names = Object.keys(await mod).join(', ') || 'none';
    throw new TypeError(`recipe ${r.file} has no exported function "${r.export}" (its exports: ${names}); write \`export async function ${r.export}(config, ctx) { ... return { metric }; }\``);
  }
  return fn as RecipeFunction;
}

function materialize(r: Recipe): string {
  const dir = join(packageRoot(), '.recipes');
  const path = join(dir, `${r.hash}.mjs`);
  if (existsSync(path)) return path;
  try {
    mkdirSync(dir, { recursive: true });
    // several workers on one machine may write the same recipe: the rename makes it whole or absent
    atomicWriteSync(path, r.source);
  } catch (e) {
    throw new Error(`recipe ${r.file}: cannot write it to ${dir} (${(e as Error).message}); a recipe runs from inside the sharelora package folder so that its \`import 'sharelora'\` finds this installation — make that folder writable for this user`);
  }
  return path;
}

/** Call a recipe and check what it returned: the same rules in-process and on workers. */
export async function callRecipe(fn: RecipeFunction, config: Record<string, unknown>, ctx: RecipeContext, file: string): Promise<Record<string, unknown> | number | undefined> {
  const out = await fn(config, ctx);
  if (out === undefined || out === null) return undefined;
  if (typeof out === 'number') return out;
  if (typeof out !== 'object' || Array.isArray(out)) throw new TypeError(`recipe ${file}: run must return an object of metrics, a number or nothing; got ${Array.isArray(out) ? 'an array' : typeof out}`);
  metricsToWire(out, `recipe ${file}: metric`);
  const problem = metricNameProblem(Object.keys(config), out);
  if (problem) throw new RangeError(`recipe ${file}: ${problem}`);
  return out as Record<string, unknown>;
}

/** Resolves after pending timers and I/O callbacks (lock renewal, signals) have had their turn. */
export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
