/**
 * What the main thread tells the control thread through shared memory, so
 * the control thread can read it while the main thread is stuck.
 */
const IN_CELL_CODE = 0;
const TRAINING_LOOPS = 1;
const CELL_STARTS = 2;

export class SharedState {
  private readonly view: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(12)) {
    this.view = new Int32Array(buffer);
  }

  /** A cell's synchronous code runs inside tslab's vm call, which SIGINT breaks (breakOnSigint). */
  get inCellCode(): boolean {
    return Atomics.load(this.view, IN_CELL_CODE) === 1;
  }

  set inCellCode(v: boolean) {
    Atomics.store(this.view, IN_CELL_CODE, v ? 1 : 0);
    if (v) Atomics.add(this.view, CELL_STARTS, 1);
  }

  /**
   * How many times cell code has started. Code that holds the thread right
   * after a new start may be interleaved with the kernel's own start-up of
   * that cell, which stopping it would cut off.
   */
  get cellStarts(): number {
    return Atomics.load(this.view, CELL_STARTS);
  }

  /** Training loops in flight: a long step is not a stuck thread, and stops by itself at its end. */
  get trainingLoops(): number {
    return Atomics.load(this.view, TRAINING_LOOPS);
  }

  set trainingLoops(n: number) {
    Atomics.store(this.view, TRAINING_LOOPS, n);
  }
}
