/**
 * Notebook display helpers. Public: plot, table, display, progressBar and the
 * types they return. The kernel additionally uses ./session.js and ./render.js.
 */
import * as plotFns from './plot.js';

/** plot.line / scatter / bar / heatmap / history return a Figure; plot.save writes one to .png/.svg/.html. */
export const plot = {
  line: plotFns.line,
  scatter: plotFns.scatter,
  bar: plotFns.bar,
  heatmap: plotFns.heatmap,
  history: plotFns.history,
  save: plotFns.save,
};
export type { PlotOptions, HeatmapOptions } from './plot.js';
export { Figure, type FigureJSON, type Trace, type Layout } from './figure.js';
export { table, TableView, type TableOptions } from './table.js';
export { display, type DisplayHandle, type DisplayFunction, type DisplayOptions } from './display.js';
export { progressBar, type ProgressCallbacks, type ProgressOptions } from './progress.js';
export { MIME_BUNDLE, Html, Markdown, type Displayable, type DisplayOutput, type MimeBundle, type RenderOptions } from './mime.js';
export { closeBrowser, ImageExportUnavailable } from './chromium.js';
export { provenance, type Provenance, type ProvenanceOptions } from './provenance.js';
