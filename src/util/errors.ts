import type { FileFailure } from './read-file.js';

/** A checkpoint, config or adapter file that cannot be used; always names the file. */
export class CheckpointError extends Error {
  constructor(public readonly file: string, public readonly problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'CheckpointError';
  }
}

/** read-file.ts's failure hook for files a model, adapter or checkpoint is made of */
export const checkpointFailure: FileFailure = (file, problem) => new CheckpointError(file, problem);
