/**
 * What an interrupt (SIGINT, or interrupt_request on the control channel) does.
 *
 * Synchronous code is stopped by V8 itself (tslab runs cells with
 * breakOnSigint). An awaited cell cannot be killed, so the kernel asks it to
 * stop: requestStop() makes a Trainer finish its current step and throw
 * TrainingInterrupted, leaving the model consistent. A cell that has not
 * settled after `graceMs` (or on a second interrupt) is detached: the reply
 * says so and whatever it still prints is discarded.
 *
 * The stop flag is process-wide, so it is only cleared once no detached
 * training loop is still running; the next cell waits for that.
 *
 * Code that never yields to the event loop (an endless chain of awaits) does
 * not see any of this; the control thread stops it (stop-stuck.ts) and the
 * cell is then detached at once (terminated()).
 */
import { clearStop, requestStop, stopRequested } from '../src/train/stop.js';
import type { TrainerCallbacks } from '../src/train/callbacks.js';
import type { Cell } from './cell.js';
import { SharedState } from './shared-state.js';

export class Interrupts {
  private running?: { cell: Cell; signals: number; timer?: NodeJS.Timeout; detached: boolean; terminated: boolean };
  private runs = 0;
  private wake?: (byInterrupt: boolean) => void;

  /**
   * @param detach ends the awaited cell now (TsRuntime.interrupt).
   */
  constructor(
    private readonly detach: () => void,
    private readonly graceMs = 2000,
    /** where the control thread sees how many training loops run */
    private readonly shared = new SharedState(),
    private readonly waitLimitMs = 60_000,
  ) {}

  private get liveRuns(): number {
    return this.runs;
  }

  private set liveRuns(n: number) {
    this.runs = n;
    this.shared.trainingLoops = n;
  }

  /** A Trainer callback that counts training loops in flight, detached ones included. */
  readonly trackRuns = (): TrainerCallbacks => {
    let counted = false;
    return {
      onStart: () => {
        if (!counted) { counted = true; this.liveRuns++; }
      },
      onEnd: () => {
        if (counted) { counted = false; this.liveRuns = Math.max(0, this.liveRuns - 1); this.wake?.(false); }
      },
    };
  };

  interrupt(): void {
    this.wake?.(true);
    const r = this.running;
    if (!r) {
      // Idle kernel, but a fit() started without await may still be training: stop it too.
      if (this.liveRuns > 0) requestStop();
      return;
    }
    requestStop();
    r.signals++;
    if (r.signals === 1 && this.graceMs > 0) r.timer = setTimeout(() => this.detachNow(), this.graceMs);
    else this.detachNow();
  }

  private detachNow(): void {
    const r = this.running;
    if (!r || r.detached) return;
    clearTimeout(r.timer);
    r.detached = true;
    this.detach();
  }

  /**
   * The control thread terminated code that held the main thread. The
   * running cell's code is gone, so it is detached now. A training loop that
   * was terminated never reports its end, so loops are no longer waited for.
   * @returns whether a cell was running
   */
  terminated(): boolean {
    this.liveRuns = 0;
    this.wake?.(false);
    const r = this.running;
    if (!r) return false;
    r.terminated = true;
    this.detachNow();
    return true;
  }

  /**
   * Before a cell runs: let a detached training loop reach its stop first,
   * so two loops never update one model. An interrupt ends the wait.
   */
  async beforeCell(note: (text: string) => void): Promise<void> {
    if (stopRequested() && this.liveRuns > 0) {
      const noteTimer = setTimeout(() => note('waiting for the interrupted training loop to finish its current step (interrupt again to stop waiting)\n'), 1000);
      const deadline = Date.now() + this.waitLimitMs;
      let woken = false;
      while (this.liveRuns > 0 && !woken && Date.now() < deadline) {
        woken = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 250);
          this.wake = (byInterrupt) => { clearTimeout(t); resolve(byInterrupt); };
        });
      }
      this.wake = undefined;
      clearTimeout(noteTimer);
    }
    clearStop();
  }

  begin(cell: Cell): void {
    this.running = { cell, signals: 0, detached: false, terminated: false };
  }

  /** How the cell ended: detached rather than finished, and whether its code was terminated. */
  end(): { detached: boolean; terminated: boolean } {
    const r = this.running;
    this.running = undefined;
    if (!r) return { detached: false, terminated: false };
    clearTimeout(r.timer);
    return { detached: r.detached, terminated: r.terminated };
  }
}
