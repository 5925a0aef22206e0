/**
 * process.exit() in a cell would end the kernel with no reply (and abort it
 * with SIGABRT, as worker threads still hold zmq sockets). Called from a
 * cell's code, including its timers and promises, it throws instead; the
 * kernel's own shutdown uses the real exit.
 */
import { cellScope } from './output.js';

export const realExit: (code?: number) => never = process.exit.bind(process) as (code?: number) => never;

export class ProcessExitInCell extends Error {
  constructor(code: unknown) {
    const arg = code === undefined ? '' : String(code);
    super(`process.exit(${arg}) would end the kernel and is not run. To start over, restart the kernel (files on disk are kept); to stop a cell, throw an error or return.`);
    this.name = 'ProcessExit';
  }
}

export function guardProcessExit(): void {
  process.exit = ((code?: number | string | null) => {
    if (cellScope()) throw new ProcessExitInCell(code ?? undefined);
    return realExit(code === null || code === undefined ? undefined : Number(code));
  }) as typeof process.exit;
}
