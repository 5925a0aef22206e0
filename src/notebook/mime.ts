/**
 * The rich-display protocol: a value that knows how to show itself returns a
 * Jupyter MIME bundle. The key is a registered symbol (not a class check) so a
 * second copy of this module, or another library, can implement it too.
 */

/** mime type → payload; JSON mime types carry objects, the rest strings (binary as base64). */
export type MimeBundle = Record<string, unknown>;

export interface DisplayOutput {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  /** the html in `data` draws with window.Plotly, which the session must load once */
  needsPlotly?: boolean;
}

export interface RenderOptions {
  /** add a static image/png where a headless Chromium is available (default true) */
  png?: boolean;
}

export const MIME_BUNDLE: unique symbol = Symbol.for('sharelora.mimeBundle') as never;

export interface Displayable {
  [MIME_BUNDLE](options: RenderOptions): DisplayOutput | Promise<DisplayOutput>;
}

export function isDisplayable(v: unknown): v is Displayable {
  return (typeof v === 'object' || typeof v === 'function') && v !== null
    && typeof (v as Partial<Displayable>)[MIME_BUNDLE] === 'function';
}

/** Raw HTML to show as-is; `display(html('<b>x</b>'))`. */
export class Html implements Displayable {
  constructor(readonly html: string, readonly text = '[HTML]') {}
  [MIME_BUNDLE](): DisplayOutput {
    return { data: { 'text/html': this.html, 'text/plain': this.text }, metadata: {} };
  }
}

export class Markdown implements Displayable {
  constructor(readonly markdown: string) {}
  [MIME_BUNDLE](): DisplayOutput {
    return { data: { 'text/markdown': this.markdown, 'text/plain': this.markdown }, metadata: {} };
  }
}
