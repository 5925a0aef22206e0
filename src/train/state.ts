/**
 * A run's state as a Trainer hands it out and takes it back (state(),
 * loadState()) and a checkpoint stores it: a leaf, so that what reads or
 * writes states need not import the Trainer.
 */
import type { AdamWState } from './adamw.js';
import type { StepRecord } from './callbacks.js';
import type { HostTensor } from './host.js';

/**
 * What a run needs, besides the options and the trained weights, to go on
 * exactly where it stopped (checkpoint.ts writes it to disk): AdamW's step
 * and moments, the gradients of a half-done accumulation, the data
 * position and RNG, and the history. Tensors are host copies, so a state
 * outlives the trainer it came from. `optimizer.lr` is the learning rate
 * of the last update (the base lr before any), kept for the record: the
 * next one comes from the options' schedule.
 */
export interface TrainerState {
  optimizer: AdamWState & { lr: number };
  /** by parameter name: gradients summed (÷ gradAccumulation) since the last update */
  accum: Map<string, HostTensor>;
  trainer: { microStep: number; epoch: number; cursor: number; rngState: number; accumLoss: number; accumCount: number };
  records: StepRecord[];
}
