/**
 * A plotly figure as plain data. Showing it sends one multi-MIME bundle:
 * - application/vnd.plotly.v1+json for JupyterLab / Notebook 7 / VS Code,
 * - text/html for classic Notebook and nbconvert's HTML export,
 * - image/png (when a headless Chromium exists) for GitHub and other static viewers.
 */
import { inspect } from 'node:util';
import { flags } from '../backend/flags.js';
import { MIME_BUNDLE, type Displayable, type DisplayOutput, type RenderOptions } from './mime.js';
import { figureHtml } from './plotly-html.js';
import { ImageExportUnavailable, renderFigureImage } from './chromium.js';
import type { FigureJSON, Layout, Trace } from './figure-json.js';

export type { FigureJSON, Layout, Trace } from './figure-json.js';

let pngUnavailable: string | undefined;

export class Figure implements Displayable {
  readonly data: Trace[];
  readonly layout: Layout;
  readonly config: Record<string, unknown>;

  constructor(data: Trace[], layout: Layout = {}, config: Record<string, unknown> = {}) {
    if (!Array.isArray(data)) throw new TypeError(`Figure: expected an array of plotly traces; got ${typeof data}`);
    this.data = data;
    this.layout = layout;
    this.config = { responsive: true, displaylogo: false, ...config };
  }

  toJSON(): FigureJSON {
    return { data: this.data, layout: this.layout, config: this.config };
  }

  /** "Figure: 2 traces (loss, evalLoss)", the text/plain form. */
  toString(): string {
    const names = this.data.map((t, i) => t.name ?? `${t.type ?? 'scatter'} ${i}`);
    const title = (this.layout.title as { text?: string } | undefined)?.text;
    return `Figure${title ? ` "${title}"` : ''}: ${this.data.length} trace${this.data.length === 1 ? '' : 's'} (${names.join(', ')})`;
  }

  /** console.log(fig) prints the summary rather than every data point */
  [inspect.custom](): string {
    return this.toString();
  }

  async [MIME_BUNDLE](options: RenderOptions = {}): Promise<DisplayOutput> {
    const json = this.toJSON();
    const data: Record<string, unknown> = {
      'application/vnd.plotly.v1+json': json,
      'text/html': figureHtml(json),
      'text/plain': this.toString(),
    };
    if (options.png !== false && flags.plotPng && pngUnavailable === undefined) {
      try {
        data['image/png'] = await renderFigureImage(json, { format: 'png' });
      } catch (e) {
        // Missing Chromium is a property of the machine: stop trying. Other failures may be transient.
        if (e instanceof ImageExportUnavailable) pngUnavailable = e.message;
      }
    }
    return { data, metadata: {}, needsPlotly: true };
  }
}
