/** Every data-file read goes through the guarded reader (src/util/read-file.ts), failing as DataError. */
import { MAX_JSON_BYTES, MAX_TEXT_BYTES, readRegularFile, readTextFile } from './read-file.js';
import { DataError } from './errors.js';

export const dataFailure = (file: string, problem: string): DataError => new DataError(file, problem);

/** A text data file (TSV, CSV, JSON Lines, a corpus file), with a byte-order mark left in place. */
export function readDataText(file: string, what = 'data file', maxBytes = MAX_TEXT_BYTES): string {
  return readTextFile(file, { maxBytes, what, fail: dataFailure });
}

export function readDataBytes(file: string, what: string, maxBytes: number): Buffer {
  return readRegularFile(file, { maxBytes, what, fail: dataFailure });
}

/** A JSON file such as tokenizer.json; a parse error names the file. */
export function readDataJson(file: string, what = 'JSON file', maxBytes = MAX_JSON_BYTES): unknown {
  const text = readDataText(file, what, maxBytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(file, `cannot read JSON (${(e as Error).message})`);
  }
}
