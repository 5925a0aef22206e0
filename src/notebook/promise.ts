/**
 * A cell whose value is a Promise forgot an `await`. Node's inspect would
 * show the async bookkeeping attached to it (the kernel's resource store,
 * request buffers and all) and its error would surface in a later cell; this
 * shows the promise's state and the fix instead.
 */
import { inspect, types } from 'node:util';
import type { DisplayOutput } from './mime.js';

export const isPromise = (v: unknown): v is Promise<unknown> => types.isPromise(v);

export const AWAIT_HINT = 'The value is a Promise: the cell did not wait for it. Put `await` before the expression to get its value (and its error, in this cell).';

type State = 'pending' | 'fulfilled' | 'rejected';

/** The state without attaching a handler: a handler would hide a later rejection from the kernel. */
export function promiseState(p: Promise<unknown>): State {
  const s = inspect(p, { depth: 0, customInspect: false, showHidden: false });
  return /^Promise \{\s*<pending>/.test(s) ? 'pending' : /^Promise \{\s*<rejected>/.test(s) ? 'rejected' : 'fulfilled';
}

const show = (v: unknown) => inspect(v, { depth: 2, maxArrayLength: 20, breakLength: 100 });

/** Synchronous form, for consoles: the state only. */
export function promiseText(p: Promise<unknown>): string {
  return `Promise { <${promiseState(p)}> }\n${AWAIT_HINT}`;
}

/** The state, and for a settled promise its value or error (reading a settled one changes nothing). */
export async function promiseOutput(p: Promise<unknown>): Promise<DisplayOutput> {
  const state = promiseState(p);
  let inside = '<pending>';
  if (state !== 'pending') {
    const settled = await p.then((value) => ({ value }), (error: unknown) => ({ error }));
    inside = 'error' in settled ? `<rejected> ${show(settled.error)}` : show(settled.value);
  }
  return { data: { 'text/plain': `Promise { ${inside} }\n${AWAIT_HINT}` }, metadata: {} };
}
