/**
 * The runner's pieces that need no kernel: nbformat-compatible files,
 * papermill-style parameters, and nbconvert's stream merging.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './env.js';
import { CELL_ID, addCellIds, joinSource, readNotebook, serializeNotebook, splitLines, type CodeCell, type Notebook } from '../../kernel/notebook-file.js';
import { declaredNames, injectParameters, parseParameterArgs } from '../../kernel/parameters.js';
import { coalesceStreams, firstLine } from '../../kernel/run.js';

describe('notebook files', () => {
  it('splits lines exactly as Python\'s str.splitlines(keepends=True), which nbformat uses', () => {
    // Python 3: 'a\r\nb\n'.splitlines(True) == ['a\r\n', 'b\n'], and so on.
    assert.deepEqual(splitLines('a\nb'), ['a\n', 'b']);
    assert.deepEqual(splitLines('a\r\nb\n'), ['a\r\n', 'b\n']);
    assert.deepEqual(splitLines('x\u2028y\rz'), ['x\u2028', 'y\r', 'z']);
    assert.deepEqual(splitLines(''), []);
    assert.deepEqual(splitLines('\n\n'), ['\n', '\n']);
  });

  it('writes every saved notebook (written by Python\'s nbformat) back byte for byte', () => {
    const dir = join(REPO_ROOT, 'notebooks');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ipynb'))) {
      const file = join(dir, f);
      assert.ok(serializeNotebook(readNotebook(file)) === readFileSync(file, 'utf8'), `${f} does not round-trip`);
    }
  });

  it('every saved notebook has a unique, valid id on every cell (nbformat 4.5; scripts/notebook-cell-ids.ts adds them)', () => {
    const files = [
      ...readdirSync(join(REPO_ROOT, 'notebooks')).filter((n) => n.endsWith('.ipynb')).map((n) => join(REPO_ROOT, 'notebooks', n)),
      join(REPO_ROOT, 'test', 'fixtures', 'notebooks', 'runner.ipynb'),
    ];
    for (const file of files) {
      const nb = readNotebook(file);
      assert.ok(nb.nbformat_minor >= 5, `${file}: nbformat_minor ${nb.nbformat_minor}; cell ids need 4.5`);
      const missing = nb.cells.map((c, i) => (typeof c.id === 'string' && CELL_ID.test(c.id) ? -1 : i)).filter((i) => i >= 0);
      assert.deepEqual(missing, [], `${file}: cells without a valid id (node dist/scripts/notebook-cell-ids.js ${file})`);
      assert.equal(new Set(nb.cells.map((c) => c.id)).size, nb.cells.length, `${file}: duplicate cell ids`);
    }
  });

  it('addCellIds gives ids only where missing, unique, and raises nbformat_minor to 5', () => {
    const nb: Notebook = { nbformat: 4, nbformat_minor: 4, metadata: {}, cells: [
      { cell_type: 'markdown', id: 'keep-me', metadata: {}, source: '' },
      { cell_type: 'code', metadata: {}, source: '', outputs: [], execution_count: null },
      { cell_type: 'raw', metadata: {}, source: '' },
      { cell_type: 'markdown', id: 'keep-me', metadata: {}, source: 'a copy' },
    ] };
    assert.equal(addCellIds(nb), 3);
    assert.equal(nb.cells[0]!.id, 'keep-me');
    assert.ok(nb.cells.every((c) => CELL_ID.test(c.id!)));
    assert.equal(new Set(nb.cells.map((c) => c.id)).size, 4);
    assert.notEqual(nb.cells[3]!.id, 'keep-me', 'the later of two equal ids is replaced');
    assert.equal(nb.nbformat_minor, 5);
    assert.equal(addCellIds(nb), 0);
  });
});

const nbWith = (params: string): Notebook => ({
  nbformat: 4, nbformat_minor: 5, metadata: {},
  cells: [
    { cell_type: 'markdown', metadata: {}, source: '# t' },
    { cell_type: 'code', metadata: { tags: ['parameters'] }, source: params, outputs: [], execution_count: null },
    { cell_type: 'code', metadata: {}, source: 'use()', outputs: [], execution_count: null },
  ],
});

describe('parameters (papermill\'s convention)', () => {
  it('parses values as JSON when they are JSON, else as strings', () => {
    assert.deepEqual(parseParameterArgs(['lr=1e-3', 'name=wasm', 'on=true', 'seeds=[0,1]', 'q="7"', 'empty=']), { lr: 0.001, name: 'wasm', on: true, seeds: [0, 1], q: '7', empty: '' });
    assert.throws(() => parseParameterArgs(['lr']), /-p expects name=value/);
    assert.throws(() => parseParameterArgs(['2x=1']), /not a TypeScript identifier/);
    assert.throws(() => parseParameterArgs(['a=1', 'a=2']), /given twice/);
  });

  it('finds the declared names with their keyword and type', () => {
    const d = declaredNames("const a = 1, b: string = 'x';\nlet c: number[] = [];\nvar e = 0;\nconst { f } = o;\nfunction g() { const h = 1; }");
    assert.deepEqual([...d], [['a', { keyword: 'const', type: undefined }], ['b', { keyword: 'const', type: 'string' }], ['c', { keyword: 'let', type: 'number[]' }], ['e', { keyword: 'var', type: undefined }]]);
  });

  it('inserts a tagged cell after the parameters cell, replacing one from an earlier run', () => {
    const nb = nbWith("const steps = 2;\nlet mode: 'a' | 'b' = 'a';");
    assert.equal(injectParameters(nb, { mode: 'b', steps: 5 }), 2);
    const cell = nb.cells[2] as CodeCell;
    assert.deepEqual(cell.metadata.tags, ['injected-parameters']);
    assert.equal(joinSource(cell.source), "// Injected parameters (sharelora run -p)\nlet mode: 'a' | 'b' = \"b\";\nconst steps = 5;");
    injectParameters(nb, { steps: 7 });
    assert.equal(nb.cells.length, 4);
    assert.match(joinSource(nb.cells[2]!.source), /const steps = 7;$/);
    injectParameters(nb, {});
    assert.equal(nb.cells.length, 3, 'no values: the earlier injected cell goes, none comes');
  });

  it('refuses names the defaults do not declare, and notebooks without exactly one parameters cell', () => {
    assert.throws(() => injectParameters(nbWith('const steps = 2;'), { stpes: 3 }), /-p stpes: not declared in the parameters cell \(cell 1\), which declares steps/);
    const none = nbWith('const steps = 2;');
    none.cells[1]!.metadata = {};
    assert.throws(() => injectParameters(none, { steps: 3 }), /no cell tagged "parameters"/);
    const two = nbWith('const steps = 2;');
    two.cells[2]!.metadata = { tags: ['parameters'] };
    assert.throws(() => injectParameters(two, { steps: 3 }), /cells 1 and 2 are both tagged "parameters"/);
  });
});

describe('stream outputs', () => {
  it('merge adjacent writes to one stream and apply carriage returns, as nbconvert does', () => {
    const out = coalesceStreams([
      { output_type: 'stream', name: 'stdout', text: 'step 1\r' },
      { output_type: 'stream', name: 'stdout', text: 'step 2\ndone\n' },
      { output_type: 'stream', name: 'stderr', text: 'warn\n' },
      { output_type: 'display_data', data: { 'text/plain': 'x' }, metadata: {} },
      { output_type: 'stream', name: 'stdout', text: 'after\n' },
    ]);
    assert.deepEqual(out.map((o) => (o.output_type === 'stream' ? `${o.name}:${joinSource(o.text)}` : o.output_type)), ['stdout:step 2\ndone\n', 'stderr:warn\n', 'display_data', 'stdout:after\n']);
  });

  it('names a cell by its first non-blank line', () => {
    assert.equal(firstLine('\n\n  const x = 1;\nmore'), '  const x = 1;');
    assert.equal(firstLine('x'.repeat(100)).length, 80);
  });
});
