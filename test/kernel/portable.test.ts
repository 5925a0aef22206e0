/**
 * The portable form `sharelora run` saves: figures as plotly JSON + PNG
 * (rendered by the real headless Chromium where the kernel did not make one),
 * no plotly.js, no figure HTML, no live training plots.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makePortable } from '../../kernel/portable.js';
import type { DisplayDataOutput, Notebook, Output } from '../../kernel/notebook-file.js';
import { Figure } from '../../src/notebook/figure.js';
import { LIVE_OUTPUT } from '../../src/notebook/progress.js';
import { outputsFor } from '../../src/notebook/render.js';
import { session } from '../../src/notebook/session.js';
import { closeBrowser, findChromium, renderFigureImage } from '../../src/notebook/chromium.js';
import type { FigureJSON } from '../../src/notebook/figure.js';

/** Outputs as the kernel makes them: the first figure of a session brings plotly.js with it. */
async function kernelOutputs(): Promise<Output[]> {
  session().plotlySent = false;
  const fig = (t: string) => new Figure([{ type: 'scatter', y: [1, 3, 2], name: t }], { title: { text: t } });
  const asOutput = (o: { data: Record<string, unknown>; metadata: Record<string, unknown> }): Output => ({ output_type: 'display_data', data: o.data, metadata: o.metadata });
  const live = (await outputsFor(fig('loss'), { png: false }, true)).map(asOutput);
  (live[live.length - 1] as DisplayDataOutput).metadata = { ...LIVE_OUTPUT };
  const final = (await outputsFor(fig('final'), { png: false })).map(asOutput);
  return [{ output_type: 'stream', name: 'stdout', text: 'training\n' }, ...live, ...final];
}

const notebook = (outputs: Output[]): Notebook => ({
  nbformat: 4, nbformat_minor: 5, metadata: {},
  cells: [{ cell_type: 'code', metadata: {}, source: 'x', outputs, execution_count: 1 }],
});

describe('portable notebooks', () => {
  after(() => closeBrowser());

  it('keeps plotly JSON and a PNG per figure and drops plotly.js, figure HTML and live plots', { skip: findChromium() ? undefined : 'no headless Chromium (apt-get install chromium)', timeout: 120_000 }, async () => {
    const outs = await kernelOutputs();
    assert.equal(outs.length, 4, 'stream, plotly.js loader, live plot, final figure');
    const nb = notebook(outs);
    const r = await makePortable(nb, { renderPng: (fig) => renderFigureImage(fig as FigureJSON, { format: 'png' }) });
    assert.deepEqual(r, { liveDropped: 1, pngRendered: 1, htmlKept: 0 });
    const kept = (nb.cells[0] as { outputs: Output[] }).outputs;
    assert.deepEqual(kept.map((o) => o.output_type), ['stream', 'display_data']);
    const fig = kept[1] as { data: Record<string, unknown> };
    assert.deepEqual(Object.keys(fig.data).sort(), ['application/vnd.plotly.v1+json', 'image/png', 'text/plain']);
    assert.ok(Buffer.from(String(fig.data['image/png']), 'base64').subarray(1, 4).toString() === 'PNG');
  });

  it('without a PNG a figure keeps its HTML, and plotly.js stays for it', async () => {
    const nb = notebook(await kernelOutputs());
    const r = await makePortable(nb, { renderPng: () => Promise.reject(new Error('no Chromium here')) });
    assert.deepEqual(r, { liveDropped: 1, pngRendered: 0, htmlKept: 1, pngError: 'no Chromium here' });
    const kept = (nb.cells[0] as { outputs: Output[] }).outputs;
    assert.equal(kept.length, 3, 'stream, plotly.js, the figure with its HTML');
    assert.match(String((kept[1] as { data: Record<string, unknown> }).data['text/html']), /^<script type="text\/javascript">if \(!window\.Plotly\)/);
  });
});
