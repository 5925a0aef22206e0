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

/**
 * Bad or missing data. `file` and `location` ("line 12", "row 3", "record 7")
 * are kept as fields so a notebook can jump to the offending record, and are
 * repeated in the message because most people only ever read the message.
 */
export class DataError extends Error {
  constructor(
    public readonly file: string,
    public readonly problem: string,
    public readonly location?: string,
  ) {
    super(location === undefined ? `${file}: ${problem}` : `${file} (${location}): ${problem}`);
    this.name = 'DataError';
  }
}
