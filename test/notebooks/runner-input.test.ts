/**
 * `sharelora run` against bad input and careless use (issues 23 and 24):
 * everything that can be checked is refused before a cell runs, with an error
 * naming the file and field, and no run writes a partial or emptied notebook
 * over its input. Each case runs the CLI in a child process with a deadline,
 * since the failures these guard against were hangs and aborts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from '../kernel/env.js';
import { CELL_ID, readNotebook, type CodeCell } from '../../kernel/notebook-file.js';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli.js');

interface Ran { code: number | null; signal: NodeJS.Signals | null; stderr: string; seconds: number }

function cli(args: string[], deadlineS = 60): Promise<Ran> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, SHARELORA_PLOT_PNG: '0', SHARELORA_SMOKE: '' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: deadlineS * 1000, killSignal: 'SIGKILL',
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((r) => child.on('close', (code, signal) => r({ code, signal, stderr, seconds: (Date.now() - started) / 1000 })));
}

const code = (source: unknown, extra: Record<string, unknown> = {}) => ({ cell_type: 'code', metadata: {}, source, outputs: [], execution_count: null, ...extra });
const notebook = (cells: unknown[], minor = 5) => JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: minor });

/** Writes `nb` as x.ipynb in a fresh folder; a cell that would run leaves `ran` there. */
function setup(t: { after(fn: () => void): void }, nb: string): { dir: string; file: string; marker: string } {
  const dir = tempDir(t, 'sharelora-run-input-');
  const file = join(dir, 'x.ipynb');
  writeFileSync(file, nb);
  return { dir, file, marker: join(dir, 'ran') };
}
const MARK = "require('node:fs').writeFileSync('ran', '1');";

/** Refused with exit status 2 and `message`, nothing ran, the input is as it was and no stray file is left. */
async function refused(t: { after(fn: () => void): void }, nb: string, args: (file: string, dir: string) => string[], message: RegExp): Promise<void> {
  const { dir, file, marker } = setup(t, nb);
  const r = await cli(args(file, dir));
  assert.equal(r.signal, null, `killed at the deadline: ${r.stderr}`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a clear error, not a stack');
  assert.equal(existsSync(marker), false, 'no cell ran');
  assert.equal(readFileSync(file, 'utf8'), nb, 'the input is unchanged');
  assert.deepEqual(readdirSync(dir).filter((f) => f !== 'x.ipynb' && f !== 'out-folder'), []);
}

describe('sharelora run: the notebook is validated before anything runs', () => {
  it('a code cell whose metadata is a string (hung the run forever)', async (t) => {
    await refused(t, notebook([code(MARK), code('1', { metadata: 'oops' })]), (f) => [ 'run', f, '--out', `${f}.out.ipynb`],
      /x\.ipynb: not a notebook this runner can execute: cell 1 \(code\): "metadata" is a string; expected an object/);
  });

  it('a null cell, a numeric source, and a numeric markdown source (written back emptied over the input)', async (t) => {
    await refused(t, notebook([code(MARK), null]), (f) => ['run', f, '--in-place'], /cell 1 is null; expected a cell object/);
    await refused(t, notebook([code(MARK), code(5)]), (f) => ['run', f, '--in-place'], /cell 1 \(code\): "source" is number 5; expected a string or a list of strings/);
    await refused(t, notebook([code(MARK), { cell_type: 'markdown', metadata: {}, source: 7 }]), (f) => ['run', f, '--in-place'],
      /cell 1 \(markdown\): "source" is number 7; expected a string or a list of strings/);
  });

  it('an input that is a FIFO or a link to /dev/zero (blocked; aborted at 4.3 GB)', async (t) => {
    const dir = tempDir(t, 'sharelora-run-input-');
    const fifo = join(dir, 'fifo.ipynb');
    execFileSync('mkfifo', [fifo]);
    const zero = join(dir, 'zero.ipynb');
    symlinkSync('/dev/zero', zero);
    for (const [file, what] of [[fifo, 'a FIFO'], [zero, 'a character device']] as const) {
      const r = await cli(['run', file, '--out', join(dir, 'o.ipynb')], 30);
      assert.equal(r.signal, null, `killed at the deadline: ${r.stderr}`);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot read \\(not a regular file\\): it is ${what}; expected a file`));
    }
  });

  it('parameters: a number JSON cannot hold (injected null and exited 0), and Object.prototype names', async (t) => {
    const params = [{ cell_type: 'code', metadata: { tags: ['parameters'] }, source: 'const n: number = 1;', outputs: [], execution_count: null }, code(MARK)];
    await refused(t, notebook(params), (f) => ['run', f, '--out', `${f}.o.ipynb`, '-p', 'n=1e400'],
      /-p n=1e400: is a number too large for a double .*expected a finite number/);
    await refused(t, notebook(params), (f) => ['run', f, '--out', `${f}.o.ipynb`, '-p', 'n=[1, -1e999]'], /-p n=\[1, -1e999\]: \[1\] is a number too large/);
    await refused(t, notebook(params), (f) => ['run', f, '--out', `${f}.o.ipynb`, '-p', 'constructor=1'],
      /-p constructor: not declared in the parameters cell \(cell 0\), which declares n/);
  });
});

describe('sharelora run: where the notebook goes is checked first, and never over the input by surprise', () => {
  it('no --out and no --in-place: refused (the README example overwrote the committed notebook)', async (t) => {
    await refused(t, notebook([code(MARK)]), (f) => ['run', f], /x\.ipynb: where should the executed notebook go\? --out file writes it there; --in-place replaces/);
  });

  it('--out onto a folder, into /proc, or into a missing folder: refused before running, no .tmp left', async (t) => {
    await refused(t, notebook([code(MARK)]), (_f, dir) => {
      execFileSync('mkdir', [join(dir, 'out-folder')]);
      return ['run', join(dir, 'x.ipynb'), '--out', join(dir, 'out-folder')];
    }, /out-folder: is a folder; expected a \.ipynb file to write/);
    await refused(t, notebook([code(MARK)]), (f) => ['run', f, '--out', '/proc/sharelora-test.ipynb'], /\/proc\/sharelora-test\.ipynb: cannot write there/);
    await refused(t, notebook([code(MARK)]), (f, dir) => ['run', f, '--out', join(dir, 'missing', 'o.ipynb')], /o\.ipynb: cannot write there \(its folder does not exist\)/);
  });

  it('--in-place with a failing cell leaves the input as it was and writes <name>.failed.ipynb', { timeout: 120_000 }, async (t) => {
    const saved = { output_type: 'stream', name: 'stdout', text: ['saved output\n'] };
    const nb = notebook([code('console.log("first")'), code('throw new Error("boom")'), code('1', { outputs: [saved], execution_count: 3 })]);
    const { dir, file } = setup(t, nb);
    const r = await cli(['run', file, '--in-place', '--backend', 'cpu'], 100);
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /wrote .*x\.failed\.ipynb with the outputs up to that cell and its error \(.*x\.ipynb is unchanged\)/);
    assert.equal(readFileSync(file, 'utf8'), nb, 'the saved outputs of the later cell are still there');
    const failed = readNotebook(join(dir, 'x.failed.ipynb'));
    assert.equal((failed.cells[1] as CodeCell).outputs[0]?.output_type, 'error');
  });
});

describe('sharelora run: what a run writes and says', () => {
  it('cell ids in what it writes, progress lines during a long cell, a forgotten await shown as a pending Promise', { timeout: 120_000 }, async (t) => {
    const nb = notebook([
      { cell_type: 'markdown', metadata: {}, source: '# no ids here' },
      code('console.log("step 1 of 2"); await new Promise((r) => setTimeout(r, 3500));'),
      code('new Promise(() => {})'),
    ], 4);
    const { dir, file } = setup(t, nb);
    const out = join(dir, 'out.ipynb');
    const r = await cli(['run', file, '--out', out, '--backend', 'cpu', '--progress-every', '1'], 100);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^ {2}cell 1: running for [1-3] s: step 1 of 2$/m, 'a line while the cell runs, with its latest output');
    const written = readNotebook(out);
    assert.equal(written.nbformat_minor, 5);
    const ids = written.cells.map((c) => c.id);
    assert.ok(ids.every((id) => typeof id === 'string' && CELL_ID.test(id)), `ids: ${ids}`);
    assert.equal(new Set(ids).size, ids.length);
    const shown = (written.cells[2] as CodeCell).outputs[0];
    assert.equal(shown?.output_type, 'execute_result');
    const text = [(shown as { data: Record<string, unknown> }).data['text/plain']].flat().join('');
    assert.match(text, /^Promise \{ <pending> \}\n.*`await`/);
    assert.doesNotMatch(text, /Symbol\(|request/);
  });
});
