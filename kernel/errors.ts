/**
 * tslab's executor reports failures by calling console.error: either a
 * TypeScript diagnostic as ("%s%d:%d - %s", file, line, col, text) or the
 * thrown value itself. Jupyter wants them as ename / evalue / traceback.
 */
import { inspect } from 'node:util';

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

const RED = '\x1b[0;31m';
const RESET = '\x1b[0m';

export const DETACHED_NOTE = 'the cell was interrupted; async work it started keeps running detached, and its output is discarded';

export const TERMINATED_NOTE = 'the cell was stopped by force: its code never yielded to the event loop (for example an endless loop of awaits), so the kernel terminated it. Promise callbacks that were queued at that moment, from any cell, were dropped; variables keep the values they had.';

export function interruptedError(evalue: string): ErrorContent {
  return { ename: 'Interrupted', evalue, traceback: [`${RED}Interrupted${RESET}: ${evalue}`] };
}

function isDiagnostic(args: unknown[]): boolean {
  return args[0] === '%s%d:%d - %s' && args.length === 5;
}

/**
 * The frames that concern the user: library code down to the cell's own
 * (compiled, "evalmachine") frames. Below those sit the kernel and tslab.
 * vm also prepends a source excerpt with a caret, which a traceback repeats.
 */
function userFrames(stack: string): string[] {
  const frames = stack.split('\n').filter((l) => /^\s+at /.test(l));
  const lastCell = frames.map((l) => l.includes('evalmachine.<anonymous>')).lastIndexOf(true);
  if (lastCell >= 0) return frames.slice(0, lastCell + 1);
  return frames.filter((l) => !/node:internal|[\\/]tslab[\\/]dist[\\/]|[\\/]kernel[\\/](runtime|kernel|output)\.(ts|js)/.test(l));
}

export function thrownToError(e: unknown): ErrorContent {
  if (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e && 'name' in e)) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED' || err.message === 'Interrupted asynchronously') {
      return interruptedError(err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED' ? 'the cell was interrupted' : DETACHED_NOTE);
    }
    const name = String(err.name || 'Error');
    const message = String(err.message ?? '');
    const frames = typeof err.stack === 'string' ? userFrames(err.stack) : [];
    return { ename: name, evalue: message, traceback: [`${RED}${name}${RESET}: ${message}`, ...frames] };
  }
  const evalue = inspect(e);
  return { ename: 'Uncaught', evalue, traceback: [`${RED}Uncaught${RESET} ${evalue}`] };
}

/** One error for a failed cell from everything the executor printed. */
export function capturedToError(calls: unknown[][]): ErrorContent {
  const diags = calls.filter(isDiagnostic);
  if (diags.length > 0 && diags.length === calls.length) {
    const lines = diags.map((d) => `${d[1]}${d[2]}:${d[3]} - ${d[4]}`);
    const more = lines.length > 1 ? ` (and ${lines.length - 1} more)` : '';
    return {
      ename: 'TSError',
      evalue: `${lines[0]}${more}`,
      traceback: [`${RED}TSError${RESET}: the cell does not type-check`, ...lines],
    };
  }
  const thrown = calls.find((c) => !isDiagnostic(c));
  if (thrown && thrown.length === 1) return thrownToError(thrown[0]);
  const text = calls.map((c) => c.map((x) => (typeof x === 'string' ? x : inspect(x))).join(' ')).join('\n');
  return { ename: 'Error', evalue: text, traceback: [text] };
}

/** Diagnostics printed by a cell that still succeeded (e.g. a `@module` cell). */
export function capturedToText(calls: unknown[][]): string {
  return calls.map((c) => (isDiagnostic(c) ? `${c[1]}${c[2]}:${c[3]} - ${c[4]}` : c.map((x) => (typeof x === 'string' ? x : inspect(x))).join(' '))).join('\n');
}
