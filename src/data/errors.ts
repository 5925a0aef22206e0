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
