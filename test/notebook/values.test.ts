/**
 * What a cell's value shows as (issue 23): a forgotten `await` shows the
 * promise's state and the fix, not the kernel's async bookkeeping; a data-set
 * split shows as a table captioned with its task, not arquero's storage.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers.js';
import { datasets } from '../../src/data/index.js';
import { plainText, renderValue } from '../../src/notebook/render.js';

const text = (o: { data: Record<string, unknown> }) => String(o.data['text/plain']);

describe('a Promise as a cell value', () => {
  it('pending: "Promise { <pending> }" and a hint to await, without the async context Node attaches', async () => {
    // The kernel runs each cell inside an AsyncLocalStorage, whose store Node hangs on every promise made there.
    const als = new AsyncLocalStorage<{ request: Buffer }>();
    const p = als.run({ request: Buffer.alloc(64) }, () => new Promise(() => {}));
    const shown = text(await renderValue(p));
    assert.match(shown, /^Promise \{ <pending> \}\n/);
    assert.match(shown, /`await`/);
    assert.doesNotMatch(shown, /Symbol\(|Buffer|request/);
    assert.match(plainText(p), /^Promise \{ <pending> \}\n.*`await`/);
  });

  it('settled: its value or its error, with the same hint; a pending one gets no handler that would hide its rejection', async () => {
    assert.match(text(await renderValue(Promise.resolve(42))), /^Promise \{ 42 \}\n.*`await`/);
    const rejected = Promise.reject(new RangeError('bad split'));
    assert.match(text(await renderValue(rejected)), /^Promise \{ <rejected> RangeError: bad split/);
    // In a child: node:test would count the deliberate unhandled rejection as this test's failure.
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { renderValue } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', 'notebook', 'render.js')).href)};
      process.on('unhandledRejection', (e) => { console.log('unhandled:', e.message); process.exit(0); });
      let reject;
      const later = new Promise((_r, j) => { reject = j; });
      await renderValue(later);
      reject(new Error('later'));
      setTimeout(() => { console.log('swallowed'); process.exit(3); }, 2000);`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(child.stdout.trim(), 'unhandled: later', `the rejection still reaches the kernel: ${child.stdout}${child.stderr}`);
  });
});

describe('a data-set split as a cell value', () => {
  it('shows as a table captioned with its task, in html and text', async () => {
    const split = await datasets.imdb({ split: 'train', limit: 8 });
    const out = await renderValue(split);
    const html = String(out.data['text/html']);
    assert.match(html, /^<table class="dataframe sharelora-table"/);
    assert.match(html, /<caption[^>]*>imdb \(classification\)<\/caption>/);
    assert.equal((html.match(/<tr>/g) ?? []).length, 1 + 8, 'a header row and the eight reviews');
    assert.match(text(out), /^imdb \(classification\)\ntext +label +id/);
    assert.ok(text(out).length < 2000, `${text(out).length} characters of text`);
  });

  it('a group of splits shows one table per split; a table nested in other values shows as one line', async () => {
    const train = await datasets.imdb({ split: 'train', limit: 3 });
    const test = await datasets.imdb({ split: 'test', limit: 2 });
    const html = String((await renderValue({ train, test })).data['text/html']);
    assert.equal((html.match(/<table /g) ?? []).length, 2);
    assert.match(html, /train: imdb \(classification\)[\s\S]*test: imdb \(classification\)/);
    const nested = text(await renderValue({ epochs: 3, data: train }));
    assert.match(nested, /^\{\n  epochs: 3,\n  data: \{\n    table: ColumnTable <3 rows × 3 columns: text, label, id>,\n    task: \{/);
    assert.ok(nested.length < 1000, nested);
  });
});
