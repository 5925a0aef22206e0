/** One row of Trainer.history (also the argument of onStep). */
export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  seconds: number;
  /** set on steps where an evaluation ran */
  evalLoss?: number;
  evalMetric?: number;
}

/** Hooks a Trainer calls; the notebook's progress bar is one implementation. */
export interface TrainerCallbacks {
  onStart?(info: { totalSteps: number }): void;
  onStep?(rec: StepRecord, info: { totalSteps: number }): void;
  onEval?(rec: { step: number; evalLoss: number; metrics: Record<string, number> }): void;
  onEnd?(info: { steps: number; interrupted: boolean }): void;
}
