/**
 * Hub id → local folder, in the Hugging Face cache layout so Python and JS
 * share one cache:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
 *     models--org--name/
 *       blobs/<etag>                     file contents, named by ETag (sha256 for LFS files)
 *       snapshots/<commit>/<file>        symlink → ../../blobs/<etag>
 *       refs/<revision>                  the commit hash the revision pointed to
 *
 * Downloads use `{HF_ENDPOINT}/{id}/resolve/{revision}/{file}`. The Hub
 * answers LFS files with a redirect to its CDN and puts the metadata
 * (X-Repo-Commit, X-Linked-Etag, X-Linked-Size) on the redirect itself, so the
 * first request is a HEAD with redirects handled by hand, as huggingface_hub does.
 *
 * Everything a server sends is checked before it is used: names before they
 * become paths (paths.ts), sizes before and while bytes are written, and
 * every request has a deadline (http.ts). A download is written to
 * `<blob>.incomplete` and renamed only once complete and verified.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { copyFile, open, rename, rm, symlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { DataError } from '../util/errors.js';
import { readDataJson, readDataText } from '../util/read-data.js';
import { atomicWrite } from '../util/fs.js';
import { MAX_JSON_BYTES } from '../util/read-file.js';
import { saveFailure } from '../util/save-error.js';
import { byteCount, NetworkError, request, type HttpLimits } from './http.js';
import { checkRevision, COMMIT, commitHeader, etagName, mkdirInside, repoFileProblem, snapshotInside } from './paths.js';

export interface ResolveOptions {
  /** Default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** Branch, tag or commit; default `main`. */
  revision?: string;
  /** Never touch the network; default from `HF_HUB_OFFLINE`. */
  offline?: boolean;
  /** Default `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Bearer token for gated or private repos; default `HF_TOKEN`. */
  token?: string;
  /** Extra optional files to fetch besides config, weights and tokenizer files. */
  extraFiles?: string[];
  /** Longest wait for an answer's headers; default 10 s. */
  connectTimeoutMs?: number;
  /** Longest silence in the middle of a download; default 30 s. */
  idleTimeoutMs?: number;
  /** Largest config, tokenizer or other non-weights file; default 64 MiB (what the readers accept). Weights are held to their declared size. */
  maxFileBytes?: number;
}

/** Fetched when present; a 404 is fine. */
export const OPTIONAL_FILES = [
  'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'vocab.json', 'merges.txt', 'tokenizer.model', 'added_tokens.json',
];

const HUB_ID = /^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/;
const DEFAULTS = { connectTimeoutMs: 10_000, idleTimeoutMs: 30_000, maxFileBytes: MAX_JSON_BYTES };

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}

export function hubCacheDir(cacheDir?: string): string {
  if (cacheDir) return resolve(cacheDir);
  if (process.env.HF_HUB_CACHE) return resolve(process.env.HF_HUB_CACHE);
  return resolve(process.env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

export function repoCacheDir(cacheDir: string, id: string): string {
  return join(cacheDir, `models--${id.split('/').join('--')}`);
}

export function isHubId(s: string): boolean {
  return HUB_ID.test(s) && !s.includes('--') && !s.includes('..');
}

function positive(name: keyof typeof DEFAULTS, v: number | undefined, max: number): number {
  const x = v ?? DEFAULTS[name];
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > max) throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  return x;
}

/**
 * A folder path is returned as is (made absolute); a Hub id is downloaded into
 * the cache (or found there when offline) and its snapshot folder returned.
 * @example const dir = await resolveModelPath('gpt2');   // ~/.cache/huggingface/hub/models--gpt2/snapshots/<commit>
 */
export async function resolveModelPath(idOrDir: string, opts: ResolveOptions = {}): Promise<string> {
  if (existsSync(idOrDir)) {
    if (!statSync(idOrDir).isDirectory()) throw new DataError(idOrDir, 'is a file; expected a model folder or a Hub id');
    return resolve(idOrDir);
  }
  if (!isHubId(idOrDir)) throw new DataError(idOrDir, 'no such folder, and not a Hub model id (expected "name" or "org/name")');
  const revision = checkRevision(opts.revision ?? 'main');
  for (const f of opts.extraFiles ?? []) {
    const problem = repoFileProblem(f);
    if (problem) throw new RangeError(`extraFiles names ${JSON.stringify(f)}: ${problem}`);
  }
  // setTimeout's limit: a longer delay fires at once
  const limits: HttpLimits = { connectTimeoutMs: positive('connectTimeoutMs', opts.connectTimeoutMs, 2 ** 31 - 1), idleTimeoutMs: positive('idleTimeoutMs', opts.idleTimeoutMs, 2 ** 31 - 1) };
  const maxFileBytes = positive('maxFileBytes', opts.maxFileBytes, Number.MAX_SAFE_INTEGER);
  const cacheDir = hubCacheDir(opts.cacheDir);
  const repoDir = repoCacheDir(cacheDir, idOrDir);
  const offline = opts.offline ?? truthy(process.env.HF_HUB_OFFLINE);
  const cached = cachedSnapshot(repoDir, revision);
  if (offline || (cached && COMMIT.test(revision))) {
    // A commit's files never change, so a complete snapshot needs no network.
    if (cached) return cached;
    throw new DataError(join(repoDir, 'snapshots'), `${idOrDir}@${revision} is not in the cache, and offline mode is on (HF_HUB_OFFLINE or offline: true); download it once with network access`);
  }
  let root: string;
  try {
    mkdirSync(cacheDir, { recursive: true });
    // the cache folder itself may be a link the user made (to another disk); everything below must stay inside it
    root = realpathSync(cacheDir);
  } catch (e) {
    throw saveFailure(cacheDir, e);
  }
  const ctx: Ctx = {
    id: idOrDir, root, repoParts: [relative(cacheDir, repoDir)], repoDir,
    endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    token: opts.token ?? process.env.HF_TOKEN, revision, limits, maxFileBytes,
  };
  try {
    return await download(ctx, opts.extraFiles ?? []);
  } catch (e) {
    // Like huggingface_hub: an unreachable Hub falls back to what the cache has.
    if (e instanceof NetworkError && cached) {
      process.emitWarning(`${e.message}; using the cached snapshot ${cached}`);
      return cached;
    }
    throw e;
  }
}

/**
 * The snapshot folder of a revision if it holds a config and weights, all of
 * whose entries resolve inside the cache, else undefined.
 */
export function cachedSnapshot(repoDir: string, revision: string): string | undefined {
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const ref = join(repoDir, 'refs', revision);
    if (!existsSync(ref)) return undefined;
    try {
      commit = readDataText(ref, 'ref', 1024).trim();
    } catch {
      return undefined;
    }
    // a ref is one commit hash; anything else (a path, say) must not become one
    if (!COMMIT.test(commit)) return undefined;
  }
  const snap = join(repoDir, 'snapshots', commit);
  const complete = existsSync(join(snap, 'config.json')) &&
    (existsSync(join(snap, 'model.safetensors')) || existsSync(join(snap, 'model.safetensors.index.json')));
  if (!complete) return undefined;
  let root: string;
  try {
    root = realpathSync(repoDir);
  } catch {
    return undefined;
  }
  return snapshotInside(root, snap) ? snap : undefined;
}

interface Ctx {
  id: string;
  /** Real path of the cache folder: nothing is written outside it. */
  root: string;
  /** The repo folder, relative to root, as path parts for mkdirInside. */
  repoParts: string[];
  /** The repo folder as the caller named it (for the path returned). */
  repoDir: string;
  endpoint: string;
  token?: string;
  revision: string;
  commit?: string;
  limits: HttpLimits;
  maxFileBytes: number;
}

/** A folder of the repo's cache, made if missing; a read-only or full disk is a SaveError naming it. */
function dirIn(ctx: Ctx, ...parts: string[]): string {
  try {
    return mkdirInside(ctx.root, [...ctx.repoParts, ...parts]);
  } catch (e) {
    throw saveFailure(join(ctx.root, ...ctx.repoParts, ...parts), e);
  }
}

async function download(ctx: Ctx, extra: string[]): Promise<string> {
  await fetchFile(ctx, 'config.json', false);
  // Later files are fetched at the commit the first answer named, so a push mid-download cannot mix revisions.
  if (!(await fetchFile(ctx, 'model.safetensors', true))) {
    const index = await fetchFile(ctx, 'model.safetensors.index.json', true);
    if (!index) {
      throw new DataError(fileUrl(ctx, 'model.safetensors'), `${ctx.id} has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are supported; pytorch_model.bin is not)`);
    }
    for (const shard of shardNames(index)) await fetchFile(ctx, shard, false);
  }
  for (const f of [...OPTIONAL_FILES, ...extra]) await fetchFile(ctx, f, true);
  const snapshot = join(ctx.repoDir, 'snapshots', ctx.commit!);
  if (ctx.revision !== ctx.commit) {
    const parts = ctx.revision.split('/');
    const ref = join(dirIn(ctx, 'refs', ...parts.slice(0, -1)), parts[parts.length - 1]!);
    // temp file + rename: a link planted at refs/<revision> is replaced, not written through
    await atomicWrite(ref, ctx.commit!);
  }
  return snapshot;
}

function shardNames(indexPath: string): string[] {
  const map = (readDataJson(indexPath, 'model.safetensors.index.json') as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object') throw new DataError(indexPath, 'no "weight_map" object; expected {"weight_map": {tensor: shard file}}');
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    const problem = repoFileProblem(s);
    if (problem) throw new DataError(indexPath, `weight_map names shard ${JSON.stringify(s)}: ${problem}; expected a file name in the repo`);
  }
  return shards as string[];
}

function fileUrl(ctx: Ctx, file: string): string {
  const rev = encodeURIComponent(ctx.commit ?? ctx.revision);
  return `${ctx.endpoint}/${ctx.id}/resolve/${rev}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

const isWeights = (file: string) => file.endsWith('.safetensors');

/** @returns the snapshot path of the file, or undefined for a missing optional file */
async function fetchFile(ctx: Ctx, file: string, optional: boolean): Promise<string | undefined> {
  let url = fileUrl(ctx, file);
  const first = url;
  const auth: Record<string, string> = ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
  let commit: string | undefined;
  let etag: string | undefined;
  let size: number | undefined;
  for (let hop = 0; ; hop++) {
    const { res, close } = await request(url, { method: 'HEAD', redirect: 'manual', headers: { ...auth, 'accept-encoding': 'identity' } }, ctx.limits);
    close();
    commit ??= commitHeader(res.headers.get('x-repo-commit'), first);
    etag ??= etagName(res.headers.get('x-linked-etag'), first);
    size ??= byteCount(res.headers.get('x-linked-size'), 'X-Linked-Size', first);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location && hop < 5) {
      const next = new URL(location, url);
      // Same-host redirects (renamed repos) are followed for metadata; a CDN redirect is where the bytes are.
      if (next.origin === new URL(first).origin && !etag) {
        url = next.href;
        continue;
      }
      url = next.href;
      break;
    }
    if (res.status === 404 && optional) return undefined;
    if (!res.ok) throw httpError(first, res);
    etag ??= etagName(res.headers.get('etag'), first);
    size ??= byteCount(res.headers.get('content-length'), 'Content-Length', first);
    break;
  }
  if (!commit || !etag) {
    throw new DataError(first, `the answer lacks ${!commit ? 'X-Repo-Commit' : 'ETag'}; is ${ctx.endpoint} a Hugging Face Hub endpoint?`);
  }
  if (ctx.commit && commit !== ctx.commit) throw new DataError(first, `answered for commit ${commit}, expected ${ctx.commit}`);
  // Weights are as large as the server says (and are then held to it); anything else is as small as a reader accepts.
  if (isWeights(file) && size === undefined) throw new DataError(first, 'the answer declares no size (X-Linked-Size or Content-Length) for a weights file; refusing an unbounded download');
  if (!isWeights(file) && size !== undefined && size > ctx.maxFileBytes) {
    throw new DataError(first, `${file} is declared as ${size} bytes, over the ${ctx.maxFileBytes}-byte limit for files other than weights (maxFileBytes)`);
  }
  ctx.commit = commit;
  const blob = join(dirIn(ctx, 'blobs'), etag);
  if (!isBlob(blob, size)) {
    await downloadBlob(ctx, url, new URL(url).origin === new URL(first).origin ? auth : {}, blob, etag, size ?? ctx.maxFileBytes, size !== undefined, first);
  }
  const parts = file.split('/');
  const target = join(dirIn(ctx, 'snapshots', commit, ...parts.slice(0, -1)), parts[parts.length - 1]!);
  try {
    // recursive: whatever was planted there goes (rm never follows a link)
    await rm(target, { force: true, recursive: true });
    try {
      await symlink(relative(dirname(target), blob), target);
    } catch {
      // No symlink permission (Windows without developer mode): huggingface_hub copies too.
      await copyFile(blob, target);
    }
  } catch (e) {
    throw saveFailure(target, e);
  }
  return target;
}

/** A finished blob is a regular file of the declared size; a link or anything else in its place is replaced. */
function isBlob(blob: string, size: number | undefined): boolean {
  try {
    const st = lstatSync(blob);
    return st.isFile() && (size === undefined || st.size === size);
  } catch {
    return false;
  }
}

function httpError(url: string, res: Response): DataError {
  const code = res.headers.get('x-error-code');
  const message = res.headers.get('x-error-message');
  const hint = res.status === 401 || res.status === 403 || code === 'RepositoryNotFound' || code === 'GatedRepo'
    ? '; the repo may not exist, or be private or gated (set HF_TOKEN)'
    : code === 'RevisionNotFound' ? '; check the revision' : '';
  return new DataError(url, `HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}${hint}`);
}

/**
 * Stream into `<blob>.incomplete`, at most `limit` bytes (the declared size,
 * or maxFileBytes when none was declared), and rename it only when complete
 * and verified; on any failure the partial file is removed.
 */
async function downloadBlob(ctx: Ctx, url: string, headers: Record<string, string>, blob: string, etag: string, limit: number, declared: boolean, named: string): Promise<void> {
  const { res, body, close } = await request(url, { headers }, ctx.limits);
  if (!res.ok || !res.body) {
    close();
    throw httpError(named, res);
  }
  let length: number | undefined;
  try {
    length = byteCount(res.headers.get('content-length'), 'Content-Length', named);
  } catch (e) {
    close();
    throw e;
  }
  if (length !== undefined && length > limit) {
    close();
    throw new DataError(named, `the download is ${length} bytes, over the ${limit} bytes ${declared ? 'declared for it' : 'allowed for a file other than weights (maxFileBytes)'}`);
  }
  const partial = `${blob}.incomplete`;
  const hash = createHash('sha256');
  let written = 0;
  let finished = false;
  try {
    // a link planted at the partial name is removed, and 'wx' never follows one
    await rm(partial, { force: true, recursive: true });
    const out = await open(partial, 'wx').catch((e) => { throw saveFailure(blob, e); });
    try {
      for await (const chunk of body()) {
        written += chunk.byteLength;
        if (written > limit || (length !== undefined && written > length)) {
          throw new DataError(named, `the server sent more than ${length !== undefined && length < limit ? `its Content-Length of ${length}` : `the ${limit}`} bytes${declared || length !== undefined ? '' : ' allowed for a file other than weights (maxFileBytes)'}; refusing the download`);
        }
        hash.update(chunk);
        await out.write(chunk).catch((e) => { throw saveFailure(blob, e); });
      }
    } finally {
      await out.close();
    }
    // LFS ETags are the sha256 of the content: a free integrity check.
    const expected = declared ? limit : length;
    const problem = expected !== undefined && written !== expected ? `got ${written} bytes, expected ${expected}`
      : /^[0-9a-f]{64}$/.test(etag) && hash.digest('hex') !== etag ? `sha256 differs from the ETag ${etag}` : undefined;
    if (problem) throw new DataError(named, `corrupt download: ${problem}`);
    await rename(partial, blob).catch((e) => { throw saveFailure(blob, e); });
    finished = true;
  } finally {
    close();
    if (!finished) await rm(partial, { force: true, recursive: true }).catch(() => {});
  }
}
