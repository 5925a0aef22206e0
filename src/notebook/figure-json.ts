/**
 * A plotly figure's data, in a leaf file: the Figure class (figure.ts) and
 * its two renderers (plotly-html.ts, chromium.ts) all read it, and the class
 * imports the renderers.
 */
export type Trace = Record<string, unknown> & { type?: string; name?: string };
export type Layout = Record<string, unknown>;

export interface FigureJSON {
  data: Trace[];
  layout: Layout;
  config: Record<string, unknown>;
}
