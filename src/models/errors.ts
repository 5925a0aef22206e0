/** A checkpoint, config or adapter file that cannot be used; always names the file. */
export class CheckpointError extends Error {
  constructor(public readonly file: string, public readonly problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'CheckpointError';
  }
}
