/**
 * Routes everything a cell prints to that cell. Each execution runs inside
 * an AsyncLocalStorage scope, so output from its timers and promises is
 * attributed to it even after later cells have started; code with no cell
 * scope (the kernel's own callbacks) writes to the most recent cell.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { TextDecoder } from 'node:util';
import { setDisplaySink } from '../src/notebook/session.js';
import type { Cell } from './cell.js';
import { log } from './log.js';

const scope = new AsyncLocalStorage<Cell>();
let latest: Cell | undefined;

export function runInCell<T>(cell: Cell, fn: () => T): T {
  latest = cell;
  return scope.run(cell, fn);
}

/** The cell whose code (or timers and promises) is calling, and no other. */
export function cellScope(): Cell | undefined {
  return scope.getStore();
}

/** The cell the calling code belongs to; the kernel's own callbacks get the latest. */
export function currentCell(): Cell | undefined {
  return scope.getStore() ?? latest;
}

type Write = typeof process.stdout.write;

function redirect(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr'): void {
  const decoder = new TextDecoder();
  stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error | null) => void), cb?: (e?: Error | null) => void) => {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const cell = currentCell();
    if (cell) cell.stream(name, text);
    else log(`${name} outside any cell: ${text.trimEnd()}`);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (done) process.nextTick(done);
    return true;
  }) as Write;
}

/** Install the redirections; called once, after start-up chatter has gone to the log. */
export function captureOutput(): void {
  redirect(process.stdout, 'stdout');
  redirect(process.stderr, 'stderr');
  setDisplaySink({
    display: (outputs, target) => currentCell()?.display(outputs, target),
    clear: (wait) => currentCell()?.clear(wait),
  });
}

/** tslab's display API calls this with a ready display_data body. */
export function tslabDisplayWriter(data: unknown, update: boolean): void {
  currentCell()?.rawDisplay(data as Record<string, unknown>, update);
}
