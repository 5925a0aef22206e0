/**
 * HTML for plotly figures that works without network access: in the live
 * notebook, in nbconvert's HTML export, and in saved files.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { DisplayOutput } from './mime.js';
import { escapeHtml } from './format.js';
import type { FigureJSON } from './figure-json.js';

const require = createRequire(import.meta.url);
let bundleSource: string | undefined;

/** plotly.min.js, made safe to place inside an inline <script> element. */
export function plotlySource(): string {
  if (bundleSource === undefined) {
    const src = readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8');
    // The HTML parser would end the script at "</script" and enters an escape mode at "<!--";
    // in plotly.min.js these only occur inside string literals, where "<\/" and "<\!" mean the same.
    bundleSource = src.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  }
  return bundleSource;
}

/** Inline JSON for a script: "</" would close the element early. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * The one output per kernel session that defines window.Plotly. Figures only
 * reference it, so a notebook carries the 4.8 MB library once and a live
 * progress plot can update without resending it.
 */
export function plotlyLoaderOutput(): DisplayOutput {
  return {
    data: {
      'text/html': `<script type="text/javascript">if (!window.Plotly) {\n${plotlySource()}\n}</script>`,
      'text/plain': '',
    },
    metadata: {},
  };
}

/**
 * A div plus a script that draws into it once window.Plotly exists. Polling
 * covers front-ends that run output scripts out of document order.
 */
export function figureHtml(fig: FigureJSON): string {
  const id = `sharelora-plot-${randomBytes(6).toString('hex')}`;
  const height = typeof fig.layout.height === 'number' ? fig.layout.height : 360;
  return `<div id="${id}" class="sharelora-plot" style="width:100%;height:${height}px;"></div>
<script type="text/javascript">
(function () {
  var fig = ${scriptJson(fig)};
  function draw(attempt) {
    var el = document.getElementById(${scriptJson(id)});
    if (!el) return;
    if (window.Plotly) { window.Plotly.newPlot(el, fig.data, fig.layout, fig.config); return; }
    if (attempt < 100) { setTimeout(function () { draw(attempt + 1); }, 100); return; }
    el.textContent = 'plotly.js is not loaded: the kernel sends it once, with the first plot of the session. Re-run that cell, or use plot.save(fig, "plot.html") for a standalone file.';
  }
  draw(0);
})();
</script>`;
}

/** A self-contained page for plot.save(fig, 'x.html'). */
export function standaloneHtml(fig: FigureJSON, title = 'plot'): string {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<script type="text/javascript">${plotlySource()}</script>
</head><body>
${figureHtml(fig)}
</body></html>
`;
}
