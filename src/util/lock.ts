/**
 * A lock file beside a folder, so that two processes (two notebook kernels,
 * a script and a kernel) never write one checkpoint at the same time: their
 * renames would interleave, one would delete the other's complete copy, and
 * one would fail with a raw ENOENT.
 *
 * `<path>.lock` is created with O_EXCL and holds the owner's pid, host and a
 * random token. A lock whose pid is gone on this host is stale (its process
 * was killed mid-save) and is broken; a live holder is waited for, up to a
 * timeout, and then named in the error.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';

export class LockError extends Error {
  constructor(public readonly lockFile: string, public readonly problem: string) {
    super(`${lockFile}: ${problem}`);
    this.name = 'LockError';
  }
}

interface Owner { pid: number; host: string; token: string; since: string }

export interface LockOptions {
  /** how long to wait for a live holder, in ms (default 120 s) */
  timeoutMs?: number;
  /** what the lock is for, for the error message */
  purpose?: string;
  /**
   * readers: where no lock file can be created (a read-only or missing
   * folder), run without one — nobody can be writing there either
   */
  readOnlyOk?: boolean;
}

/** whether a process of this host is alive (EPERM: it is, but not ours) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(file: string): Promise<Owner | undefined> {
  try {
    const o = JSON.parse(await readFile(file, 'utf8')) as Owner;
    return Number.isSafeInteger(o.pid) && typeof o.host === 'string' && typeof o.token === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** tokens of the locks this process holds now: a lock with our pid but another token is left from an earlier process that had our pid */
const held = new Set<string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Remove `file` only if it still holds `stale`'s token. Renaming first makes
 * the check and the removal one step: a lock taken between our read and our
 * removal by someone else is put back instead of deleted.
 */
async function breakStale(file: string, staleToken: string | undefined): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch {
    return; // already gone: someone else broke it
  }
  const now = await readOwner(aside);
  if (now && now.token !== staleToken) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/** create the lock file with our owner record; false when it exists */
async function create(file: string, me: Owner): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await fh.writeFile(JSON.stringify(me));
    await fh.close();
    return true;
  } catch (e) {
    // a lock file we could not fill would block everyone for nothing
    await fh.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw e;
  }
}

/** Run `fn` holding `<path>.lock`; the lock is released however `fn` ends. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const file = `${path}.lock`;
  const me: Owner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex'), since: new Date().toISOString() };
  const timeout = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeout;
  let wait = 5;
  // before the file exists: another task of this process reading it must not take it for a dead process's
  held.add(me.token);
  try {
    for (;;) {
      try {
        if (await create(file, me)) break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (opts.readOnlyOk && (code === 'EACCES' || code === 'EROFS' || code === 'EPERM' || code === 'ENOENT')) return await fn();
        throw e;
      }
      const owner = await readOwner(file);
      if (owner && owner.host === me.host && (owner.pid === process.pid ? !held.has(owner.token) : !pidAlive(owner.pid))) {
        await breakStale(file, owner.token);
        continue;
      }
      // unreadable: being written this instant, or left empty by a process killed right after creating it
      if (!owner && Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now()) > 10_000) {
        await breakStale(file, undefined);
        continue;
      }
      if (Date.now() > deadline) {
        const who = owner ? `process ${owner.pid} on ${owner.host} (since ${owner.since})` : 'another process';
        throw new LockError(file, `${opts.purpose ?? path} is locked by ${who}; waited ${timeout / 1000} s. Two trainers must not save to one folder; if that process is gone, delete the lock file`);
      }
      await sleep(wait);
      wait = Math.min(100, wait * 2);
    }
    try {
      return await fn();
    } finally {
      // only our own lock: a lock broken as stale meanwhile now belongs to someone else
      const owner = await readOwner(file);
      if (owner?.token === me.token) await unlink(file).catch(() => undefined);
    }
  } finally {
    held.delete(me.token);
  }
}
