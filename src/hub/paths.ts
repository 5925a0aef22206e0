/**
 * Names that come from the user or from a server (revision, X-Repo-Commit,
 * ETag, shard names) become paths in the Hub cache. Each is checked against
 * what the Hub really sends before it is joined to a path, and every folder
 * written to is walked from the cache root without following a symlink that
 * leads outside it, so no answer and no planted link can make the resolver
 * write, delete or link anything outside the cache.
 */
import { lstatSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { DataError } from '../util/errors.js';

export const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Why `rev` is not a branch or tag name by git's rules (git check-ref-format,
 * one-level names allowed), or undefined when it is one or is a commit hash.
 */
export function revisionProblem(rev: string): string | undefined {
  if (COMMIT.test(rev)) return undefined;
  if (rev.length === 0 || rev.length > 255) return 'expected 1 to 255 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(rev)) return 'contains a space, control character or one of ~ ^ : ? * [ \\';
  if (rev.includes('..')) return 'contains ".."';
  if (rev.includes('@{') || rev === '@') return 'contains "@{" or is "@"';
  if (rev.startsWith('/') || rev.endsWith('/') || rev.includes('//')) return 'starts or ends with "/", or contains "//"';
  if (rev.endsWith('.')) return 'ends with "."';
  if (rev.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock'))) return 'has a part that starts with "." or ends with ".lock"';
  return undefined;
}

export function checkRevision(rev: unknown): string {
  if (typeof rev !== 'string') throw new RangeError(`revision must be a string (a branch, tag or 40-hex commit), got ${typeof rev}`);
  const problem = revisionProblem(rev);
  if (problem) throw new RangeError(`revision ${JSON.stringify(rev)} is not a branch, tag or commit name: ${problem}`);
  return rev;
}

/**
 * The blob name an ETag header gives: the Hub sends a git sha1 or an LFS
 * sha256, quoted, maybe weak (W/"…"). A plain token is accepted too (other
 * servers); anything else could be a path and is refused.
 */
export function etagName(raw: string | null, url: string): string | undefined {
  if (raw === null || raw.trim() === '') return undefined;
  const m = /^(?:W\/)?"([^"]*)"$/.exec(raw.trim());
  const value = m ? m[1]! : raw.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(value)) {
    throw new DataError(url, `the ETag ${JSON.stringify(raw.slice(0, 100))} is not a hex digest or a plain token ([A-Za-z0-9_-], at most 128); refusing to use it as a cache file name`);
  }
  return value;
}

export function commitHeader(raw: string | null, url: string): string | undefined {
  if (raw === null) return undefined;
  if (!COMMIT.test(raw)) throw new DataError(url, `X-Repo-Commit is ${JSON.stringify(raw.slice(0, 100))}; expected a 40-hex commit hash`);
  return raw;
}

/** Why `file` is not a plain relative path inside a repo ("a.json", "sub/b.safetensors"), or undefined. */
export function repoFileProblem(file: unknown): string | undefined {
  if (typeof file !== 'string' || file.length === 0 || file.length > 1000) return 'expected a relative path of 1 to 1000 characters';
  if (isAbsolute(file) || file.includes('\\')) return 'is absolute or contains "\\"';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(file)) return 'contains a control character';
  if (file.split('/').some((p) => p === '' || p === '.' || p === '..')) return 'has an empty, "." or ".." part';
  return undefined;
}

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Create `root/parts…` one level at a time, refusing any part that is a
 * symlink resolving outside `root` (mkdir -p would follow it and create
 * folders wherever it points). `root` must already be a real path.
 * @returns the folder
 */
export function mkdirInside(root: string, parts: string[]): string {
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const st = lstatSync(dir);
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(dir);
      } catch {
        throw new DataError(dir, `is a dangling symlink inside the Hub cache ${root}; remove it`);
      }
      if (!isInside(root, target)) throw new DataError(dir, `is a symlink to ${target}, outside the Hub cache ${root}; refusing to write through it (remove the link)`);
      if (!lstatSync(target).isDirectory()) throw new DataError(dir, 'is not a folder; remove it');
    } else if (!st.isDirectory()) {
      throw new DataError(dir, 'is not a folder; remove it');
    }
  }
  return dir;
}

/** Whether every entry of a snapshot folder resolves to a file inside `root`: only then is its content the cache's own. */
export function snapshotInside(root: string, snap: string): boolean {
  try {
    if (!isInside(root, realpathSync(snap))) return false;
    for (const e of readdirSync(snap, { recursive: true, withFileTypes: true })) {
      if (!isInside(root, realpathSync(join(e.parentPath ?? e.path, e.name)))) return false;
    }
    return true;
  } catch {
    // a dangling link or an unreadable folder: not a usable snapshot
    return false;
  }
}
