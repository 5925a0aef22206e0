/**
 * A process-wide "stop between steps" flag. The Jupyter kernel sets it on
 * SIGINT; async training loops keep running after tslab's interrupt reply,
 * so loops must poll this rather than rely on being killed.
 */
let stop = false;

export function requestStop(): void {
  stop = true;
}

export function clearStop(): void {
  stop = false;
}

export function stopRequested(): boolean {
  return stop;
}

export class TrainingInterrupted extends Error {
  constructor(public readonly step: number) {
    super(`training interrupted after step ${step}; the model and adapter keep the weights of the last completed step`);
    this.name = 'TrainingInterrupted';
  }
}
