/**
 * No runtime import circle in the library. Reads the compiled JS (tsc erases
 * type-only imports, so what is left is what Node loads), follows static
 * imports, re-exports and literal dynamic `import('./…')`, and reports every
 * strongly connected set of more than one file. The TypeScript sources are
 * read too, type imports included: a circle closed only by a type import
 * means a type lives in the wrong file. And no file of src/ imports from a
 * floor above its own (FLOORS).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.js';

const IMPORT = /(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[;\s])import\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name), ext) : e.name.endsWith(ext) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []);
}

/**
 * Each file's imports of other files under `dir`: the `.js` files (what Node
 * loads), or with `ext: '.ts'` the TypeScript sources, where `import type`
 * counts and an import of './x.js' means './x.ts'.
 */
function importGraph(dir: string, ext: '.js' | '.ts'): Map<string, string[]> {
  const files = new Set(sourceFiles(dir, ext));
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const deps: string[] = [];
    const text = readFileSync(f, 'utf8');
    // TypeScript's own scanner for the sources: it sees `import type` and skips imports quoted in comments
    const specs = ext === '.ts'
      ? ts.preProcessFile(text, true, true).importedFiles.map((r) => r.fileName).filter((n) => n.startsWith('.')).map((n) => n.replace(/\.js$/, '.ts'))
      : [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!);
    for (const spec of specs) {
      const target = resolve(dirname(f), spec);
      if (files.has(target)) deps.push(target);
    }
    edges.set(f, deps);
  }
  return edges;
}

/** Circles among the files under `dir` (see importGraph), each as its paths relative to `dir`, sorted. */
export function importCycles(dir: string, { ext = '.js' }: { ext?: '.js' | '.ts' } = {}): string[][] {
  const edges = importGraph(dir, ext);
  const files = edges.keys();
  // Tarjan's strongly connected components
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next); low.set(v, next); next++; stack.push(v); onStack.add(v);
    for (const w of edges.get(v)!) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || edges.get(v)!.includes(v)) cycles.push(scc.map((x) => relative(dir, x)).sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return cycles;
}

/**
 * The floors of src/, lowest first: a file may import its own floor and those
 * below, never one above. Shared services (util, the switches and the ops of
 * backend, the Hub resolver) at the bottom, then data, the models, the methods
 * on them, analysis, display, and training, which reports through display;
 * the package index and the CLI on top.
 */
export const FLOORS = ['util', 'backend', 'hub', 'data', 'models', 'adapters', 'analysis', 'notebook', 'train', 'top'] as const;
/** processes' own entry points, which may load the whole library: the queue's runner warms it up before its first recipe */
const ENTRY_POINTS: ReadonlySet<string> = new Set(['train/queue/runner.ts']);

/** Imports in the sources under `dir` (type imports included) from a floor to one above it, as 'from → to'. */
export function upwardImports(dir: string, floors: readonly string[] = FLOORS, entryPoints = ENTRY_POINTS): string[] {
  const floorOf = (file: string) => {
    const rel = relative(dir, file);
    const i = floors.indexOf(rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : 'top');
    if (i < 0) throw new Error(`${rel} is on no floor: add its folder to FLOORS`);
    return i;
  };
  const up: string[] = [];
  for (const [from, deps] of importGraph(dir, '.ts')) {
    const floor = floorOf(from);
    if (entryPoints.has(relative(dir, from))) continue;
    for (const to of deps) if (floorOf(to) > floor) up.push(`${relative(dir, from)} → ${relative(dir, to)}`);
  }
  return up.sort();
}

describe('import graph', () => {
  it('finds a circle through a dynamic import (the detector works)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cycles-'));
    try {
      writeFileSync(join(dir, 'a.js'), "import { b } from './b.js';\nexport const a = 1;\n");
      writeFileSync(join(dir, 'b.js'), "export const b = async () => (await import('./a.js')).a;\n");
      writeFileSync(join(dir, 'c.js'), "export * from './a.js';\n");
      assert.deepEqual(importCycles(dir), [['a.js', 'b.js']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('src has no runtime import circle', () => {
    const cycles = importCycles(join(ROOT, 'dist', 'src'));
    assert.deepEqual(cycles, [], `runtime import circles:\n${cycles.map((c) => c.join(' ↔ ')).join('\n')}`);
  });

  it('finds a circle closed only by a type import in the sources (the detector works)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'type-cycles-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport interface A { b: B }\n");
      writeFileSync(join(dir, 'b.ts'), "import { type A } from './a.js';\nexport interface B { a?: A }\n");
      // quoted in a comment, not an import
      writeFileSync(join(dir, 'c.ts'), "/** @example import { A } from './a.js' */\nexport const c = 1;\n// import { c } from './c.js'\n");
      writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
      assert.deepEqual(importCycles(dir, { ext: '.ts' }), [['a.ts', 'b.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const folder of ['src', 'kernel', 'bench', 'scripts']) {
    it(`${folder}: no import circle, type imports included`, () => {
      const cycles = importCycles(join(ROOT, folder), { ext: '.ts' });
      assert.deepEqual(cycles, [], `import circles (type imports included); move the shared types into a leaf file:\n${cycles.map((c) => c.join(' ↔ ')).join('\n')}`);
    });
  }

  it('finds an upward import, a type import included (the detector works)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'floors-'));
    try {
      for (const d of ['low', 'high']) mkdirSync(join(dir, d));
      writeFileSync(join(dir, 'low', 'a.ts'), "import type { B } from '../high/b.js';\nexport type A = B;\n");
      writeFileSync(join(dir, 'low', 'c.ts'), "import type { A } from './a.js';\nexport type C = A;\n");
      writeFileSync(join(dir, 'high', 'b.ts'), "export type B = number;\n");
      writeFileSync(join(dir, 'high', 'd.ts'), "import type { C } from '../low/c.js';\nexport type D = C;\n");
      writeFileSync(join(dir, 'index.ts'), "export * from './high/d.js';\n");
      assert.deepEqual(upwardImports(dir, ['low', 'high', 'top'], new Set()), ['low/a.ts → high/b.ts']);
      assert.throws(() => upwardImports(dir, ['low', 'top'], new Set()), /high\/[bd]\.ts is on no floor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('src has no upward import (data/ importing models/, notebook/ importing train/, …), type imports included', () => {
    const up = upwardImports(join(ROOT, 'src'));
    assert.deepEqual(up, [], `imports from a floor to one above it (floors, lowest first: ${FLOORS.join(', ')}):\n${up.join('\n')}`);
  });
});
