/**
 * No runtime import circle in the library. Reads the compiled JS (tsc erases
 * type-only imports, so what is left is what Node loads), follows static
 * imports, re-exports and literal dynamic `import('./…')`, and reports every
 * strongly connected set of more than one file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './helpers.js';

const IMPORT = /(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[;\s])import\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []);
}

export function importCycles(dir: string): string[][] {
  const files = new Set(jsFiles(dir));
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const deps: string[] = [];
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(f), (m[1] ?? m[2] ?? m[3])!);
      if (files.has(target)) deps.push(target);
    }
    edges.set(f, deps);
  }
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
});
