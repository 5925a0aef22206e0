/**
 * The one way this library reads a file it did not write itself. A FIFO or
 * device named like a data file would block open() or read() forever
 * (SIGINT included) or stream without end (/dev/zero), so only regular files
 * are opened, and no more than a stated number of bytes is ever read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/** Builds the caller's typed error (DataError, CheckpointError) so each layer keeps its own error type. */
export type FileFailure = (file: string, problem: string) => Error;

export interface ReadLimit {
  /** Refuse files larger than this. */
  maxBytes: number;
  /** What the file is, for messages ("tokenizer.json", "data file"). */
  what: string;
  fail: FileFailure;
}

const MB = 1 << 20;

/** Caps sized to the largest real file of each kind, with room to spare. */
export const MAX_JSON_BYTES = 64 * MB;
/** V8 strings top out near 512 MiB, so a larger text file could not be decoded anyway. */
export const MAX_TEXT_BYTES = 500 * MB;

export function describeBytes(n: number): string {
  return n >= MB ? `${n} bytes (${(n / MB).toFixed(1)} MiB)` : `${n} bytes`;
}

/**
 * A read-only descriptor, refused unless the path names a regular file both
 * before opening (stat: no open() of a FIFO, which would block) and after
 * (fstat: the path was not swapped in between).
 */
export function openRegularFile(file: string, fail: FileFailure): number {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw fail(file, `cannot read (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message})`);
  }
  if (!st.isFile()) throw fail(file, `cannot read (not a regular file): it is ${kind(st)}; expected a file`);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw fail(file, `cannot read (${(e as Error).message})`);
  }
  const now = fstatSync(fd);
  if (!now.isFile()) {
    closeSync(fd);
    throw fail(file, `cannot read (not a regular file): it became ${kind(now)} while being opened`);
  }
  return fd;
}

function kind(st: Stats): string {
  return st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'a special file';
}

/**
 * The whole file, or the caller's error when it is not a regular file or is
 * larger than `maxBytes`. The size is checked before anything is read, and
 * again while reading, so a file that grows meanwhile cannot exceed the cap.
 */
export function readRegularFile(file: string, limit: ReadLimit): Buffer {
  const fd = openRegularFile(file, limit.fail);
  try {
    const size = fstatSync(fd).size;
    const tooBig = (n: number) => limit.fail(file, `${limit.what} is ${describeBytes(n)}, over the ${describeBytes(limit.maxBytes)} limit`);
    if (size > limit.maxBytes) throw tooBig(size);
    // one byte more than expected tells a file that grew while being read (or a /proc file that reports size 0)
    const chunks: Buffer[] = [];
    let total = 0;
    for (let want = size + 1; ; want = MB) {
      const buf = Buffer.allocUnsafe(Math.min(want, limit.maxBytes + 1 - total));
      let got = 0;
      while (got < buf.length) {
        let n: number;
        try {
          n = readSync(fd, buf, got, buf.length - got, null);
        } catch (e) {
          throw limit.fail(file, `cannot read ${limit.what} (${(e as Error).message})`);
        }
        if (n === 0) break;
        got += n;
      }
      chunks.push(got === buf.length ? buf : buf.subarray(0, got));
      total += got;
      if (total > limit.maxBytes) throw tooBig(total);
      if (got < buf.length) break;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** readRegularFile decoded as UTF-8 (invalid bytes become U+FFFD, as readFileSync(file, 'utf8') did). */
export function readTextFile(file: string, limit: ReadLimit): string {
  return readRegularFile(file, limit).toString('utf8');
}
