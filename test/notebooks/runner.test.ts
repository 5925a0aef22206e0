/**
 * `sharelora run`, the headless notebook runner, on a notebook that makes
 * every kind of output (test/fixtures/notebooks/runner.ipynb): parameters
 * injected papermill-style, streams, an execute_result, displays updated in
 * place, the kernel's own progress bar and loss plot, a plot, a delayed
 * clear, and a failing cell that must stop the run. Then the same notebook
 * through `jupyter nbconvert --execute`: the same output types, cell by cell.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, installKernel, tempDir } from '../kernel/env.js';
import { joinSource, readNotebook, serializeNotebook, type CodeCell, type Notebook, type Output } from '../../kernel/notebook-file.js';
import { makePortable } from '../../kernel/portable.js';
import { findChromium } from '../../src/notebook/chromium.js';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli.js');
const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'notebooks', 'runner.ipynb');
const MODEL = join(REPO_ROOT, 'test', 'fixtures', 'hf-reference', 'gpt2', 'model');
/** Figures get PNGs where a headless Chromium exists (CI installs one); '0' turns them off as in CI's smoke runs. */
const PNG = findChromium() ? '1' : '0';

interface Ran { code: number | null; stdout: string; stderr: string }

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SHARELORA_PLOT_PNG: '0', SHARELORA_SMOKE: '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((r) => child.on('close', (code) => r({ code, stdout, stderr })));
}

const text = (o: Output | undefined) => {
  if (!o) return '';
  if (o.output_type === 'stream') return Array.isArray(o.text) ? o.text.join('') : o.text;
  if (o.output_type === 'error') return `${o.ename}: ${o.evalue}`;
  const t = o.data['text/plain'];
  return Array.isArray(t) ? t.join('') : String(t ?? '');
};
const byId = (nb: Notebook, id: string) => nb.cells.find((c) => c.id === id) as CodeCell;
/** What nbconvert and the runner must agree on: the kind of each output, its stream or its MIME types. */
const shape = (c: CodeCell) => c.outputs.map((o) => (o.output_type === 'stream' ? `stream:${o.name}` : o.output_type === 'error' ? 'error' : `${o.output_type}:${Object.keys(o.data).sort().join('+')}`));

describe('sharelora run (headless runner)', { concurrency: 1 }, () => {
  let dir: string;
  let out: string;
  let ran: Ran;
  let nb: Notebook;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sharelora-run-'));
    out = join(dir, 'runner.out.ipynb');
    // An absolute model folder, so that nbconvert can run the output from another folder below.
    ran = await cli(['run', FIXTURE, '-p', 'steps=3', '-p', 'label=given', '-p', `modelDir=${MODEL}`, '--out', out, '--backend', 'cpu'], { SHARELORA_PLOT_PNG: PNG });
    nb = readNotebook(out);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops at the failing cell with exit status 1, naming the cell by index and first line', () => {
    assert.equal(ran.code, 1, ran.stderr);
    assert.match(ran.stderr, /cell 8 failed \("\/\/ fails on purpose"\): Error: boom with steps=3/);
    assert.match(ran.stderr, /wrote .*runner\.out\.ipynb with the outputs up to that cell and its error/);
  });

  it('injects the parameters after the cell tagged "parameters", as papermill does', () => {
    assert.deepEqual(nb.cells[1]!.metadata.tags, ['parameters']);
    const injected = nb.cells[2] as CodeCell;
    assert.deepEqual(injected.metadata.tags, ['injected-parameters']);
    assert.equal(joinSource(injected.source), `// Injected parameters (sharelora run -p)\nconst steps = 3;\nconst label = "given";\nconst modelDir = ${JSON.stringify(MODEL)};`);
    assert.equal(text(byId(nb, 'a0000003').outputs[0]), 'steps=3 label=given lr=0.01\n');
  });

  it('saves streams, the last value as execute_result and execution counts in order', () => {
    const c = byId(nb, 'a0000003');
    assert.deepEqual(shape(c), ['stream:stdout', 'stream:stderr', 'execute_result:text/plain']);
    assert.equal(text(c.outputs[2]), '30');
    assert.equal((c.outputs[2] as { execution_count: number }).execution_count, 3);
    const counts = nb.cells.filter((x) => x.cell_type === 'code').map((x) => (x as CodeCell).execution_count);
    assert.deepEqual(counts, [1, 2, 3, 4, 5, 6, 7, 8, null]);
  });

  it('saves displays, with a display id updated in place', () => {
    const c = byId(nb, 'a0000004');
    assert.deepEqual(shape(c), ['display_data:text/html+text/plain', 'display_data:text/markdown+text/plain', 'display_data:text/plain', 'display_data:text/html+text/plain']);
    assert.match(String((c.outputs[0] as { data: Record<string, string[]> }).data['text/html']!.join('')), /<td>ShareA<\/td>/);
    assert.equal(text(c.outputs[1]), '**given**');
    assert.equal(text(c.outputs[2]), "'updated in place'");
    assert.match(text(c.outputs[3]), /^v +n +mean +sd +ci_low +ci_high\n/);
  });

  it('saves the progress bar every training run shows in the kernel, but not its live loss plot', () => {
    const c = byId(nb, 'a0000005');
    const html = (o: Output) => (o.output_type === 'display_data' ? String((o.data['text/html'] as string[] | undefined)?.join('') ?? '') : '');
    const bar = c.outputs.find((o) => html(o).includes('sharelora-progress'));
    assert.ok(bar, `no progress bar among ${shape(c).join(', ')}`);
    assert.match(html(bar), /step 3\/3 · loss \d/);
    assert.match(html(bar), /done/);
    assert.deepEqual(shape(c), ['display_data:text/html+text/plain', 'stream:stdout'], 'the live loss plot (and plotly.js, sent with it) are left out');
    assert.equal(text(c.outputs[c.outputs.length - 1]), 'trained 3 steps\n');
  });

  it('saves a plot as plotly JSON with a PNG, without its HTML', () => {
    const c = byId(nb, 'a0000006');
    const fig = (c.outputs[0] as { data: Record<string, { data: { y: number[] }[] }> }).data['application/vnd.plotly.v1+json']!;
    assert.deepEqual(fig.data[0]!.y, [3, 2, 1.5]);
    if (PNG === '1') {
      assert.deepEqual(shape(c), ['execute_result:application/vnd.plotly.v1+json+image/png+text/plain']);
      assert.match(String((c.outputs[0] as { data: Record<string, unknown> }).data['image/png']), /^iVBORw0KGgo/);
    } else {
      // no PNG can be made: the figure keeps the HTML that draws it
      assert.deepEqual(shape(c), ['execute_result:application/vnd.plotly.v1+json+text/html+text/plain']);
    }
  });

  it('applies a delayed clear_output when the next output arrives', () => {
    assert.deepEqual(byId(nb, 'a0000007').outputs.map(text), ['after the clear\n']);
  });

  it('saves the error and leaves later cells unexecuted', () => {
    const c = byId(nb, 'a0000008');
    assert.deepEqual(shape(c), ['error']);
    assert.equal(text(c.outputs[0]), 'Error: boom with steps=3');
    const last = byId(nb, 'a0000009');
    assert.deepEqual(last.outputs, []);
    assert.equal(last.execution_count, null);
  });

  it('writes the file as nbformat does (sorted keys, one-space indent, lines split)', () => {
    assert.equal(readFileSync(out, 'utf8'), serializeNotebook(readNotebook(out)));
    assert.equal(nb.metadata.kernelspec?.name, 'sharelora');
    assert.equal((nb.metadata.language_info as { name: string }).name, 'typescript');
  });

  it('gives the same outputs as jupyter nbconvert --execute, cell by cell (type, stream, MIME types)', { skip: missingJupyter(), timeout: 300_000 }, async (t) => {
    // nbconvert cannot inject parameters: it runs the runner's output, which carries the injected cell.
    const jupyterPath = tempDir(t, 'sharelora-jp-');
    const conv = tempDir(t, 'sharelora-nbc-');
    installKernel(jupyterPath);
    const input = join(conv, 'in.ipynb');
    writeFileSync(input, readFileSync(out));
    const r = spawnSync('jupyter', ['nbconvert', '--to', 'notebook', '--execute', '--allow-errors', '--ExecutePreprocessor.kernel_name=sharelora',
      '--ExecutePreprocessor.timeout=300', '--output', 'nbc.ipynb', '--output-dir', conv, input], {
      env: { ...process.env, SHARELORA_BACKEND: 'cpu', SHARELORA_PLOT_PNG: PNG, SHARELORA_SMOKE: '', JUPYTER_PATH: jupyterPath, JUPYTER_RUNTIME_DIR: conv, JUPYTER_CONFIG_DIR: conv },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const j = readNotebook(join(conv, 'nbc.ipynb'));
    // What Jupyter saved, put into the form the runner saves (the kernel made any PNG there is on both sides).
    await makePortable(j, { renderPng: () => Promise.reject(new Error('left to the kernel')) });
    // nbconvert runs on past the error (--allow-errors) so that it writes the notebook; compare up to it.
    for (const id of ['a0000002', 'a0000003', 'a0000004', 'a0000005', 'a0000006', 'a0000007', 'a0000008']) {
      assert.deepEqual(shape(byId(j, id)), shape(byId(nb, id)), `cell ${id}`);
      assert.equal(byId(j, id).execution_count, byId(nb, id).execution_count, `cell ${id} execution_count`);
    }
  });
});

describe('sharelora run: command line', () => {
  it('refuses a parameter the parameters cell does not declare, before running anything', async (t) => {
    const out = join(tempDir(t, 'sharelora-run-'), 'x.ipynb');
    const r = await cli(['run', FIXTURE, '-p', 'stpes=3', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /-p stpes: not declared in the parameters cell \(cell 1\), which declares steps, label, lr, modelDir/);
    assert.equal(existsSync(out), false);
  });

  it('refuses to overwrite saved outputs with a smoke run', async () => {
    const r = await cli(['run', FIXTURE], { SHARELORA_SMOKE: '1' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /SHARELORA_SMOKE=1 without --out/);
  });

  it('interrupts a cell stuck in synchronous code after --timeout and names it', { timeout: 120_000 }, async (t) => {
    const dir = tempDir(t, 'sharelora-run-');
    const nbFile = join(dir, 'slow.ipynb');
    const cells = [
      { cell_type: 'code', id: 'b1', metadata: {}, source: 'console.log("quick");', outputs: [], execution_count: null },
      // a timer on the main thread could never fire here: the clock runs on another thread
      { cell_type: 'code', id: 'b2', metadata: {}, source: 'while (true) {}', outputs: [], execution_count: null },
    ];
    writeFileSync(nbFile, JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: 5 }));
    const started = Date.now();
    const r = await cli(['run', nbFile, '--out', join(dir, 'out.ipynb'), '--timeout', '2', '--backend', 'cpu'], { SHARELORA_INTERRUPT_GRACE_MS: '500' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cell 1 failed \("while \(true\) \{\}"\): ran past --timeout 2 s and was interrupted \(Interrupted\)/);
    assert.ok(Date.now() - started < 100_000);
    const nb = readNotebook(join(dir, 'out.ipynb'));
    assert.equal(text((nb.cells[0] as CodeCell).outputs[0]), 'quick\n');
    assert.equal((nb.cells[1] as CodeCell).outputs[0]?.output_type, 'error');
  });

  it('--help lists the commands; worker refuses a missing --queue with its usage; unknown commands are refused', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}run +execute a notebook headless/m);
    assert.match(help.stdout, /^ {2}worker +/m);
    const runHelp = await cli(['run', '--help']);
    assert.equal(runHelp.code, 0);
    assert.match(runHelp.stdout, /-p, --parameter name=value/);
    const worker = await cli(['worker']);
    assert.equal(worker.code, 2);
    assert.match(worker.stderr, /--queue is required[\s\S]*usage: sharelora worker/);
    assert.doesNotMatch(worker.stderr, /\n\s+at /, 'no stack trace for a usage error');
    const bad = await cli(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
    const badFlag = await cli(['run', FIXTURE, '--out']);
    assert.equal(badFlag.code, 2);
  });
});

function missingJupyter(): string | undefined {
  const r = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? 'jupyter nbconvert is not installed (apt-get install jupyter-nbconvert python3-ipykernel)' : undefined;
}
