/**
 * Rewrites saved notebooks into the portable form `sharelora run` now saves
 * (kernel/portable.ts): plotly JSON + PNG per figure, no plotly.js, no figure
 * HTML, no live training plots. For notebooks saved before progressBar marked
 * its live plot, that plot is recognised by what progressBar draws: a display
 * titled "loss" whose traces are "train loss" and "eval loss".
 *
 *   node dist/scripts/portable-notebooks.js notebooks/*.ipynb
 */
import { statSync } from 'node:fs';
import { readNotebook, writeNotebook, type DisplayDataOutput } from '../kernel/notebook-file.js';
import { isMarkedLive, makePortable } from '../kernel/portable.js';
import { closeBrowser, renderFigureImage } from '../src/notebook/chromium.js';
import type { FigureJSON } from '../src/notebook/figure.js';

function drawnByProgressBar(o: DisplayDataOutput): boolean {
  const fig = o.data['application/vnd.plotly.v1+json'] as FigureJSON | undefined;
  if (!fig) return false;
  const title = (fig.layout?.title as { text?: string } | undefined)?.text;
  return title === 'loss' && fig.data.length > 0 && fig.data.every((t) => t.name === 'train loss' || t.name === 'eval loss');
}

const files = process.argv.slice(2);
if (!files.length) {
  process.stderr.write('usage: node dist/scripts/portable-notebooks.js <notebook.ipynb>...\n');
  process.exit(2);
}
for (const file of files) {
  const before = statSync(file).size;
  const nb = readNotebook(file);
  const r = await makePortable(nb, {
    renderPng: (fig) => renderFigureImage(fig as FigureJSON, { format: 'png' }),
    isLive: (o) => isMarkedLive(o) || drawnByProgressBar(o),
  });
  writeNotebook(file, nb);
  process.stdout.write(`${file}: ${(before / 1e6).toFixed(2)} MB → ${(statSync(file).size / 1e6).toFixed(2)} MB; ${r.liveDropped} live plots left out, ${r.pngRendered} PNGs rendered${r.htmlKept ? `, ${r.htmlKept} figures kept their HTML (${r.pngError})` : ''}\n`);
}
await closeBrowser();
