/**
 * Per-process display state. It lives on globalThis under a registered symbol
 * because the kernel imports this package through ESM while notebook cells
 * reach it through require(); should those ever yield two module instances,
 * they must still agree on whether plotly.js was already sent.
 */
import type { DisplayOutput } from './mime.js';

/** What the Jupyter kernel installs so display() can reach the current cell. */
export interface DisplaySink {
  /**
   * Queue outputs for the calling cell. `target` applies to the last output
   * (earlier ones, like the plotly.js loader, are always new outputs). A
   * promise keeps its place in the cell's output order and the cell's reply
   * waits for it.
   */
  display(outputs: DisplayOutput[] | Promise<DisplayOutput[]>, target: { displayId?: string; update?: boolean }): void;
  clear(wait: boolean): void;
}

interface SessionState {
  sink?: DisplaySink;
  plotlySent: boolean;
}

const KEY = Symbol.for('sharelora.notebook.session');

export function session(): SessionState {
  const g = globalThis as unknown as Record<symbol, SessionState | undefined>;
  return (g[KEY] ??= { plotlySent: false });
}

/** Called by the kernel at start-up; undefined restores plain-text mode. */
export function setDisplaySink(sink: DisplaySink | undefined): void {
  session().sink = sink;
}

export function displaySink(): DisplaySink | undefined {
  return session().sink;
}
