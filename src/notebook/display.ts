/**
 * display(value): show a value as a rich output of the current cell. As in
 * IPython, it returns nothing (so it adds no result of its own when it is a
 * cell's last line) unless asked for a display id; that handle then updates
 * the same output in place. Outside a Jupyter kernel it prints the value's text.
 *
 * @example
 * display(plot.line(losses));
 * const h = display(table(rows), { displayId: true });
 * h.update(table(moreRows));
 */
import { randomBytes } from 'node:crypto';
import { Html, Markdown, type RenderOptions } from './mime.js';
import { outputsFor, plainText } from './render.js';
import { displaySink } from './session.js';

export interface DisplayHandle {
  readonly displayId: string;
  /** replace the output shown by this handle */
  update(value: unknown, options?: RenderOptions): void;
}

export interface DisplayOptions extends RenderOptions {
  /** true (a fresh id) or a chosen id: return a handle that can update this output */
  displayId?: boolean | string;
}

function show(value: unknown, displayId: string | undefined, update: boolean, options: RenderOptions): void {
  const sink = displaySink();
  if (sink) sink.display(outputsFor(value, options, displayId !== undefined), { displayId, update });
  else process.stdout.write(`${plainText(value)}\n`);
}

export interface DisplayFunction {
  (value: unknown, options?: DisplayOptions & { displayId?: false }): void;
  (value: unknown, options: DisplayOptions & { displayId: true | string }): DisplayHandle;
  html(html: string): void;
  markdown(markdown: string): void;
  /** clear the current cell's output; wait=true clears when the next output arrives (no flicker) */
  clear(wait?: boolean): void;
}

function displayImpl(value: unknown, options: DisplayOptions = {}): DisplayHandle | undefined {
  const { displayId, ...render } = options;
  if (displayId === undefined || displayId === false) {
    show(value, undefined, false, render);
    return undefined;
  }
  if (typeof displayId !== 'boolean' && (typeof displayId !== 'string' || displayId === '')) {
    throw new TypeError(`display: displayId must be true or a non-empty string; got ${JSON.stringify(displayId)}`);
  }
  const id = displayId === true ? randomBytes(8).toString('hex') : displayId;
  show(value, id, false, render);
  return { displayId: id, update: (v: unknown, o: RenderOptions = render) => show(v, id, true, o) };
}

export const display = Object.assign(displayImpl, {
  html: (html: string): void => { displayImpl(new Html(html)); },
  markdown: (markdown: string): void => { displayImpl(new Markdown(markdown)); },
  clear: (wait = false): void => displaySink()?.clear(wait),
}) as DisplayFunction;
