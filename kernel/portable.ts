/**
 * What `sharelora run` saves, as opposed to what the kernel sends. In a live
 * session a figure carries HTML that draws with plotly.js, which the kernel
 * sends once (4.8 MB) with the first figure; each training run also shows a
 * live loss plot. Saved into a file, that makes every notebook over 5 MB, and
 * static viewers (GitHub, nbconvert's HTML) strip the scripts and show an
 * empty box. So the saved notebook keeps, per figure, the plotly JSON
 * (JupyterLab, Notebook 7 and VS Code draw it interactively) and a PNG
 * (everything else shows it), and leaves out plotly.js, the figure HTML and
 * the live training plots.
 */
import type { CodeCell, DisplayDataOutput, ExecuteResultOutput, Notebook, Output } from './notebook-file.js';

const PLOTLY_JSON = 'application/vnd.plotly.v1+json';
/** The start of plotlyLoaderOutput()'s HTML (src/notebook/plotly-html.ts). */
const LOADER_PREFIX = '<script type="text/javascript">if (!window.Plotly) {';

export interface PortableOptions {
  /** renders a figure's JSON to base64 PNG; when it throws, the figure keeps its HTML (and plotly.js stays) */
  renderPng(figure: unknown): Promise<string>;
  /** which outputs are live training feedback (default: those progressBar marks in their metadata) */
  isLive?(output: DisplayDataOutput): boolean;
}

export interface PortableReport {
  liveDropped: number;
  pngRendered: number;
  /** figures left with their HTML because no PNG could be made; plotly.js is kept for them */
  htmlKept: number;
  /** why the first PNG could not be made, if one could not */
  pngError?: string;
}

const text = (v: unknown) => (Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : '');

export function isMarkedLive(o: DisplayDataOutput): boolean {
  return (o.metadata?.sharelora as { live?: unknown } | undefined)?.live === true;
}

function isLoader(o: Output): boolean {
  return o.output_type === 'display_data' && !(PLOTLY_JSON in o.data) && text(o.data['text/html']).startsWith(LOADER_PREFIX);
}

/** Rewrites the code cells' outputs in place; see the file comment for what and why. */
export async function makePortable(nb: Notebook, opts: PortableOptions): Promise<PortableReport> {
  const isLive = opts.isLive ?? isMarkedLive;
  const report: PortableReport = { liveDropped: 0, pngRendered: 0, htmlKept: 0 };
  const loaders: { cell: CodeCell; output: Output }[] = [];
  for (const c of nb.cells) {
    if (c.cell_type !== 'code') continue;
    const kept: Output[] = [];
    for (const o of c.outputs) {
      if (o.output_type === 'display_data' && isLive(o)) {
        report.liveDropped++;
        continue;
      }
      if (isLoader(o)) loaders.push({ cell: c, output: o });
      if ((o.output_type === 'display_data' || o.output_type === 'execute_result') && PLOTLY_JSON in o.data) {
        const fig = o as DisplayDataOutput | ExecuteResultOutput;
        if (!('image/png' in fig.data)) {
          try {
            fig.data = { ...fig.data, 'image/png': await opts.renderPng(fig.data[PLOTLY_JSON]) };
            report.pngRendered++;
          } catch (e) {
            report.pngError ??= (e as Error).message;
          }
        }
        if ('image/png' in fig.data) {
          const { 'text/html': _html, ...rest } = fig.data;
          fig.data = rest;
        } else {
          report.htmlKept++;
        }
      }
      kept.push(o);
    }
    c.outputs = kept;
  }
  // plotly.js is needed only by figure HTML that is still there.
  if (report.htmlKept === 0) for (const { cell, output } of loaders) cell.outputs = cell.outputs.filter((o) => o !== output);
  return report;
}
