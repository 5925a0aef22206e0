/** Crash-safe file writes shared by adapters, models and checkpoints. */
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

/** temp file, fsync, rename, fsync the folder: a crash leaves the old file or the new one, never a torn one */
export async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path));
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
