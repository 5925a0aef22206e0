/**
 * A save that the file system refused (full disk, read-only mount, file-size
 * limit, permissions). The raw errno error names only a temp file, so this
 * one names the file being saved, says what to do, and that the file there
 * before, if any, is untouched (saves go through a temp file and a rename).
 */
export class SaveError extends Error {
  constructor(
    public readonly file: string,
    /** The errno code, e.g. 'ENOSPC', 'EROFS', 'EFBIG'. */
    public readonly code: string | undefined,
    public readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'SaveError';
  }
}

const HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full; free some space or save to a folder on another disk',
  EDQUOT: 'the disk quota is used up; free some space or save to a folder on another disk',
  EROFS: 'the file system is read-only; save to a writable folder',
  EFBIG: 'the file is larger than this process may write (ulimit -f, or the file system\'s size limit); raise the limit or save elsewhere',
  EACCES: 'permission denied; save to a folder you can write to',
  EPERM: 'operation not permitted; save to a folder you can write to',
  EIO: 'the disk reported an I/O error; check the device and save elsewhere',
};

/** Wrap a write error; anything that is not an errno error (a bug, a SaveError already) passes through. */
export function saveFailure(file: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof SaveError || typeof code !== 'string' || !code.startsWith('E')) return e;
  const hint = HINTS[code] ?? (e as Error).message;
  return new SaveError(file, code, `cannot save (${code}): ${hint}. Nothing was replaced: the file that was there before, if any, is unchanged`);
}
