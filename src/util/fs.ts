/** Crash-safe file writes shared by adapters, models and checkpoints. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { saveFailure } from './save-error.js';

const tempName = (path: string) => `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * temp file, fsync, rename, fsync the folder: a crash leaves the old file or the new one, never a torn one.
 * A full disk, read-only mount or size limit throws SaveError naming `path`.
 */
export async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempName(path);
  try {
    // 'wx': never write through something already at the temp name
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw saveFailure(path, e);
  }
  await syncDir(dirname(path));
}

/** atomicWrite for synchronous callers (saveTokenizer). */
export function atomicWriteSync(path: string, data: Uint8Array | string): void {
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the temp file may sit on the very file system that refused the write
    }
    throw saveFailure(path, e);
  }
}

/** A rename is only durable once its folder is fsynced (POSIX); where folders cannot be opened or synced (Windows) this is a no-op. */
export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch {
    // EISDIR/EPERM/EINVAL: the platform has no directory fsync
  } finally {
    await fh.close();
  }
}
