/**
 * Errors that code a cell left running raises after that cell has finished
 * (a timer that throws, a rejection nobody handles). Front-ends drop output
 * addressed to a finished request, so such an error is shown on stderr of
 * the cell running now, or of the next one, saying which cell it came from.
 * The kernel log gets it too. Notes about the kernel itself (an interrupt
 * that stopped code while no cell ran) travel the same way.
 */
import type { Cell } from './cell.js';
import { log } from './log.js';

/** Beyond this many undelivered notes only a count is kept (a timer can throw every millisecond). */
const MAX_PENDING = 20;

export class LateErrors {
  private readonly pending: string[] = [];
  private dropped = 0;
  /** the visible cell executing now, which gets notes at once */
  private running?: Cell;

  /**
   * An error raised outside the cell that is running: `origin` is the cell
   * whose code raised it (undefined: code that no cell started).
   */
  report(kind: string, origin: Cell | undefined, traceback: string): void {
    const from = origin ? `cell [${origin.executionCount}], after that cell had finished` : 'code running outside any cell';
    this.note(`${kind} from ${from}:\n${traceback}`);
  }

  note(text: string): void {
    log(text.replace(/\x1b\[[0-9;]*m/g, ''));
    const body = text.endsWith('\n') ? text : `${text}\n`;
    if (this.running) return this.running.stream('stderr', body);
    if (this.pending.length < MAX_PENDING) this.pending.push(body);
    else this.dropped++;
  }

  /** A visible cell starts: it shows what waited, and takes new notes until `finished`. */
  started(cell: Cell): void {
    this.running = cell;
    if (this.pending.length === 0) return;
    const more = this.dropped ? `… and ${this.dropped} more (in the kernel log)\n` : '';
    cell.stream('stderr', this.pending.splice(0).join('') + more);
    this.dropped = 0;
  }

  /** Whether `cell` still takes its own errors directly. */
  isRunning(cell: Cell): boolean {
    return this.running === cell;
  }

  /** From here on, errors of `cell` count as late. */
  finished(cell: Cell): void {
    if (this.running === cell) this.running = undefined;
  }
}
