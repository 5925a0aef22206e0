import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as aq from 'arquero';
import * as tf from '@tensorflow/tfjs-core';
import { plot } from '../../src/notebook/index.js';
import { MIME_BUNDLE, type DisplayOutput } from '../../src/notebook/mime.js';
import { closeBrowser, findChromium } from '../../src/notebook/chromium.js';
import { outputsFor } from '../../src/notebook/render.js';
import { session } from '../../src/notebook/session.js';
import { useBackend } from '../../src/backend/index.js';

const chromium = findChromium();
const noChromium = chromium ? false : 'no headless Chromium (apt-get install chromium)';

describe('plot figures', () => {
  before(async () => { await useBackend('cpu'); });

  it('plots numbers, named series, typed arrays and 1-D tensors as lines', () => {
    assert.deepEqual(plot.line([3, 1, 2]).data, [{ type: 'scatter', mode: 'lines', name: 'y', y: [3, 1, 2], x: [0, 1, 2] }]);
    const named = plot.line({ train: new Float32Array([2, 1]), eval: tf.tensor1d([3, 2]) });
    assert.deepEqual(named.data.map((t) => [t.name, t.y]), [['train', [2, 1]], ['eval', [3, 2]]]);
    assert.equal(named.layout.showlegend, true);
    assert.deepEqual(plot.line([1, NaN, null as unknown as number]).data[0]!.y, [1, null, null], 'non-finite points become gaps');
  });

  it('plots table columns, defaulting y to every numeric column but x', () => {
    const t = aq.table({ step: [1, 2, 3], loss: [3, 2, 1], lr: [0.1, 0.1, 0.05], tag: ['a', 'b', 'c'] });
    const fig = plot.scatter(t, { x: 'step', title: 'run' });
    assert.deepEqual(fig.data.map((d) => [d.name, d.mode, d.x]), [['loss', 'markers', [1, 2, 3]], ['lr', 'markers', [1, 2, 3]]]);
    assert.deepEqual(fig.layout.title, { text: 'run' });
    assert.throws(() => plot.line(t, { y: 'nope' }), /no column "nope"; the columns are "step", "loss", "lr", "tag"/);
    assert.throws(() => plot.line(t, { y: 'tag' }), /column "tag" must hold numbers; found string/);
  });

  it('draws bars, heatmaps and training histories', () => {
    assert.deepEqual(plot.bar({ A: 1, B: 2 }).data[0], { type: 'bar', x: ['A', 'B'], y: [1, 2] });
    const hm = plot.heatmap(tf.tensor2d([[1, 2], [3, 4]]), { xLabels: ['a', 'b'] });
    assert.deepEqual(hm.data[0]!.z, [[1, 2], [3, 4]]);
    assert.equal(hm.data[0]!.type, 'heatmap');
    const h = plot.history(aq.table({ step: [1, 2, 3, 4], loss: [4, 3, 2, 1], evalLoss: [null, 3.5, null, 2.5] }));
    assert.deepEqual(h.data.map((d) => [d.name, d.x, d.y]), [['train loss', [1, 2, 3, 4], [4, 3, 2, 1]], ['eval loss', [2, 4], [3.5, 2.5]]]);
    assert.equal(h.toString(), 'Figure: 2 traces (train loss, eval loss)');
  });

  it('explains bad input', () => {
    assert.throws(() => plot.line('loss'), /plot\.line: expected numbers .* got string/);
    assert.throws(() => plot.heatmap([1, 2]), /plot\.heatmap: expected a non-empty number\[\]\[\]/);
    assert.throws(() => plot.history([{ step: 1 }]), /expected a training history with columns step, loss .* missing "loss"/);
    assert.throws(() => plot.line(tf.tensor2d([[1]])), /a tensor must be 1-D \(got shape \[1, 1\]\)/);
    assert.throws(() => plot.bar(aq.table({ a: [1] })), /with a table, pass \{ x: 'labelColumn', y: 'valueColumn' \}/);
  });
});

// One browser serves the whole file; launching one costs seconds.
after(() => closeBrowser());

describe('figure display bundle', () => {
  it('offers plotly JSON, html and text, and inlines plotly.js once per session', async () => {
    session().plotlySent = false;
    const fig = plot.line([1, 2, 3]);
    const [first] = await outputsFor(fig, { png: false });
    assert.deepEqual(Object.keys(first!.data).sort(), ['application/vnd.plotly.v1+json', 'text/html', 'text/plain']);
    assert.deepEqual((first!.data['application/vnd.plotly.v1+json'] as { data: unknown }).data, fig.data);
    assert.ok((first!.data['text/html'] as string).length > 4_000_000, 'the first figure carries plotly.js');
    assert.ok((first!.data['text/html'] as string).startsWith('<script type="text/javascript">if (!window.Plotly) {'));
    const second = await outputsFor(plot.line([4]), { png: false });
    assert.ok((second[0]!.data['text/html'] as string).length < 10_000);
    session().plotlySent = false;
    const live = await outputsFor(fig, { png: false }, true);
    assert.equal(live.length, 2, 'an updatable display gets plotly.js as its own output');
    assert.ok((live[0]!.data['text/html'] as string).length > 4_000_000);
    assert.ok((live[1]!.data['text/html'] as string).length < 10_000);
  });

  it('adds a static PNG rendered by headless Chromium', { skip: noChromium, timeout: 60_000 }, async () => {
    const out = await (plot.bar({ a: 1 }) as unknown as { [MIME_BUNDLE](o: object): Promise<DisplayOutput> })[MIME_BUNDLE]({});
    const png = Buffer.from(out.data['image/png'] as string, 'base64');
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 5000);
  });
});

describe('plot.save', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sharelora-plot-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a standalone offline HTML page', async () => {
    const file = await plot.save(plot.line([1, 2], { title: 'a <title>' }), join(dir, 'fig.html'));
    const html = readFileSync(file, 'utf8');
    // assert.ok rather than match: a failing match would print all 4.8 MB
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.ok(html.includes('<title>a &lt;title&gt;</title>'));
    assert.equal(html.match(/plotly\.js v\d/g)?.length, 1);
    assert.ok(html.includes('Plotly.newPlot'));
  });

  it('writes PNG and SVG through headless Chromium', { skip: noChromium, timeout: 60_000 }, async () => {
    const png = readFileSync(await plot.save(plot.heatmap([[1, 2], [3, 4]]), join(dir, 'h.png')));
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const svg = readFileSync(await plot.save(plot.line([1, 3, 2]), join(dir, 'l.svg')), 'utf8');
    assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /class="main-svg"/);
  });

  it('rejects unknown formats and non-figures with what it expected', async () => {
    await assert.rejects(plot.save(plot.line([1]), join(dir, 'x.jpg')), /unsupported file extension "\.jpg" .* expected \.png, \.svg or \.html/);
    await assert.rejects(plot.save({} as never, join(dir, 'x.png')), /expected a Figure/);
  });
});
