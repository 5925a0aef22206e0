/**
 * End to end: a notebook executed by nbconvert with the sharelora kernel and
 * exported to HTML must show its plots in a browser with no network access.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findChromium } from '../../src/notebook/chromium.js';
import { REPO_ROOT, SYSTEM_PYTHON, installKernel, missingPython, tempDir } from '../kernel/env.js';

const require = createRequire(import.meta.url);
/** the page's DOM, as used inside page.evaluate (this project compiles without lib.dom) */
declare const document: { querySelectorAll(selector: string): { length: number }; body: { innerText: string } };
const chromium = findChromium();
const skip = missingPython(['nbconvert', 'nbclient']) ?? (chromium ? undefined : 'no headless Chromium (apt-get install chromium)');
const GPT2 = join(REPO_ROOT, 'test', 'fixtures', 'hf-reference', 'gpt2', 'model');

const code = (source: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source });
const notebook = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: 'sharelora', display_name: 'TypeScript · ShareLoRA', language: 'typescript' } },
  cells: [
    { cell_type: 'markdown', metadata: {}, source: '# export check' },
    code('plot.line({ loss: [3, 2, 1.5, 1.2] }, { title: "first" })'),
    code('display(plot.bar({ A: 1, B: 2 }));\ntable([{ step: 1, loss: 0.5 }])'),
    code([
      `const model = await loadModel(${JSON.stringify(GPT2)});`,
      "const adapter = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A' });",
      'const batch = { inputIds: [[1, 2, 3, 4, 5, 6, 7, 8]], labels: [[1, 2, 3, 4, 5, 6, 7, 8]] };',
      'const trainer = new Trainer(model, adapter, { lr: 1e-3 });',
      'await trainer.fit({ train: [batch, batch, batch], epochs: 2 });',
      'plot.history(trainer)',
    ].join('\n')),
  ],
};

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, opts);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('close', (c) => (c === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${c}\n${out}`))));
  });
}

test('an executed notebook exported to HTML draws every plot offline', { skip, timeout: 240_000 }, async (t) => {
  const dir = tempDir(t, 'sharelora-export-');
  const jupyterPath = join(dir, 'jupyter');
  installKernel(jupyterPath);
  writeFileSync(join(dir, 'check.ipynb'), JSON.stringify(notebook));
  await run(SYSTEM_PYTHON, ['-m', 'nbconvert', '--execute', '--to', 'html', '--ExecutePreprocessor.timeout=180', 'check.ipynb'], {
    // The export shows text/html; static PNGs are covered by the plot and kernel tests and cost a browser here.
    cwd: dir, env: { ...process.env, JUPYTER_PATH: jupyterPath, JUPYTER_RUNTIME_DIR: dir, SHARELORA_BACKEND: 'cpu', SHARELORA_PLOT_PNG: '0' },
  });
  const html = readFileSync(join(dir, 'check.html'), 'utf8');
  assert.equal(html.match(/plotly\.js v\d/g)?.length, 1, 'plotly.js is inlined exactly once');

  const { chromium: pw } = require('playwright-core') as typeof import('playwright-core');
  const browser = await pw.launch({ executablePath: chromium, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    // Offline: the export's CDN scripts (require.js, MathJax) must not be needed to draw the plots.
    await page.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(join(dir, 'check.html')).href);
    // line + bar + the training loss plot + the history plot
    await page.waitForFunction(() => document.querySelectorAll('.sharelora-plot .main-svg').length >= 8, undefined, { timeout: 30_000 });
    const drawn = await page.evaluate(() => ({
      plots: document.querySelectorAll('.sharelora-plot.js-plotly-plot').length,
      traces: document.querySelectorAll('.sharelora-plot .scatterlayer .trace, .sharelora-plot .barlayer .trace').length,
      unloaded: document.body.innerText.includes('plotly.js is not loaded'),
      table: document.querySelectorAll('table.sharelora-table').length,
    }));
    assert.deepEqual(drawn, { plots: 4, traces: 4, unloaded: false, table: 1 });
    assert.deepEqual(errors.filter((e) => /Plotly/.test(e)), []);
  } finally {
    await browser.close();
  }
});
