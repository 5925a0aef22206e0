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
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { DataError } from './errors.js';

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
}

/** Fetched when present; a 404 is fine. */
export const OPTIONAL_FILES = [
  'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'vocab.json', 'merges.txt', 'tokenizer.model', 'added_tokens.json',
];

const HUB_ID = /^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/;
const COMMIT = /^[0-9a-f]{40}$/;

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
  const revision = opts.revision ?? 'main';
  const repoDir = repoCacheDir(hubCacheDir(opts.cacheDir), idOrDir);
  const offline = opts.offline ?? truthy(process.env.HF_HUB_OFFLINE);
  const cached = cachedSnapshot(repoDir, revision);
  if (offline || (cached && COMMIT.test(revision))) {
    // A commit's files never change, so a complete snapshot needs no network.
    if (cached) return cached;
    throw new DataError(join(repoDir, 'snapshots'), `${idOrDir}@${revision} is not in the cache, and offline mode is on (HF_HUB_OFFLINE or offline: true); download it once with network access`);
  }
  const ctx: Ctx = {
    id: idOrDir, repoDir, endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    token: opts.token ?? process.env.HF_TOKEN, revision,
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

/** The snapshot folder of a revision if it holds a config and weights, else undefined. */
export function cachedSnapshot(repoDir: string, revision: string): string | undefined {
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const ref = join(repoDir, 'refs', revision);
    if (!existsSync(ref)) return undefined;
    commit = readFileSync(ref, 'utf8').trim();
  }
  const snap = join(repoDir, 'snapshots', commit);
  const complete = existsSync(join(snap, 'config.json')) &&
    (existsSync(join(snap, 'model.safetensors')) || existsSync(join(snap, 'model.safetensors.index.json')));
  return complete ? snap : undefined;
}

interface Ctx { id: string; repoDir: string; endpoint: string; token?: string; revision: string; commit?: string }

class NetworkError extends DataError {}

async function download(ctx: Ctx, extra: string[]): Promise<string> {
  await fetchFile(ctx, 'config.json', false);
  // Later files are fetched at the commit the first answer named, so a push mid-download cannot mix revisions.
  if (!(await fetchFile(ctx, 'model.safetensors', true))) {
    const index = await fetchFile(ctx, 'model.safetensors.index.json', true);
    if (!index) {
      throw new DataError(fileUrl(ctx, 'model.safetensors'), `${ctx.id} has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are supported; pytorch_model.bin is not)`);
    }
    for (const shard of await shardNames(index)) await fetchFile(ctx, shard, false);
  }
  for (const f of [...OPTIONAL_FILES, ...extra]) await fetchFile(ctx, f, true);
  const snapshot = join(ctx.repoDir, 'snapshots', ctx.commit!);
  if (ctx.revision !== ctx.commit) {
    await mkdir(join(ctx.repoDir, 'refs'), { recursive: true });
    await writeFile(join(ctx.repoDir, 'refs', ctx.revision), ctx.commit!);
  }
  return snapshot;
}

async function shardNames(indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new DataError(indexPath, `invalid JSON (${(e as Error).message})`);
  }
  if (!map || typeof map !== 'object') throw new DataError(indexPath, 'no "weight_map" object; expected {"weight_map": {tensor: shard file}}');
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string' || s.includes('..') || s.startsWith('/')) throw new DataError(indexPath, `weight_map names shard ${JSON.stringify(s)}; expected a file name in the repo`);
  }
  return shards as string[];
}

function fileUrl(ctx: Ctx, file: string): string {
  const rev = encodeURIComponent(ctx.commit ?? ctx.revision);
  return `${ctx.endpoint}/${ctx.id}/resolve/${rev}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

function cleanEtag(v: string | null): string | undefined {
  return v ? v.replace(/^W\//, '').replace(/"/g, '') : undefined;
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new NetworkError(url, `cannot connect (${cause?.code ?? cause?.message ?? (e as Error).message})`);
  }
}

/** @returns the snapshot path of the file, or undefined for a missing optional file */
async function fetchFile(ctx: Ctx, file: string, optional: boolean): Promise<string | undefined> {
  let url = fileUrl(ctx, file);
  const first = url;
  const auth: Record<string, string> = ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
  let res: Response | undefined;
  let commit: string | undefined;
  let etag: string | undefined;
  let size: number | undefined;
  for (let hop = 0; ; hop++) {
    res = await request(url, { method: 'HEAD', redirect: 'manual', headers: { ...auth, 'accept-encoding': 'identity' } });
    commit ??= res.headers.get('x-repo-commit') ?? undefined;
    etag ??= cleanEtag(res.headers.get('x-linked-etag'));
    const linkedSize = res.headers.get('x-linked-size');
    if (size === undefined && linkedSize) size = Number(linkedSize);
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
    etag ??= cleanEtag(res.headers.get('etag'));
    const length = res.headers.get('content-length');
    if (size === undefined && length) size = Number(length);
    break;
  }
  if (!commit || !etag) {
    throw new DataError(first, `the answer lacks ${!commit ? 'X-Repo-Commit' : 'ETag'}; is ${ctx.endpoint} a Hugging Face Hub endpoint?`);
  }
  if (ctx.commit && commit !== ctx.commit) throw new DataError(first, `answered for commit ${commit}, expected ${ctx.commit}`);
  ctx.commit = commit;
  const blob = join(ctx.repoDir, 'blobs', etag);
  if (!existsSync(blob)) await downloadBlob(url, new URL(url).origin === new URL(first).origin ? auth : {}, blob, etag, size, first);
  const target = join(ctx.repoDir, 'snapshots', commit, file);
  await mkdir(dirname(target), { recursive: true });
  await rm(target, { force: true });
  try {
    await symlink(relative(dirname(target), blob), target);
  } catch {
    // No symlink permission (Windows without developer mode): huggingface_hub copies too.
    await copyFile(blob, target);
  }
  return target;
}

function httpError(url: string, res: Response): DataError {
  const code = res.headers.get('x-error-code');
  const message = res.headers.get('x-error-message');
  const hint = res.status === 401 || res.status === 403 || code === 'RepositoryNotFound' || code === 'GatedRepo'
    ? '; the repo may not exist, or be private or gated (set HF_TOKEN)'
    : code === 'RevisionNotFound' ? '; check the revision' : '';
  return new DataError(url, `HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}${hint}`);
}

async function downloadBlob(url: string, headers: Record<string, string>, blob: string, etag: string, size: number | undefined, named: string): Promise<void> {
  const res = await request(url, { headers });
  if (!res.ok || !res.body) throw httpError(named, res);
  await mkdir(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  const hash = createHash('sha256');
  const out = await open(partial, 'w');
  let written = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      written += chunk.byteLength;
      await out.write(chunk);
    }
  } catch (e) {
    await out.close();
    await rm(partial, { force: true });
    throw new NetworkError(named, `download interrupted after ${written} bytes (${(e as Error).message})`);
  }
  await out.close();
  // LFS ETags are the sha256 of the content: a free integrity check.
  const problem = size !== undefined && Number.isFinite(size) && written !== size ? `got ${written} bytes, expected ${size}`
    : /^[0-9a-f]{64}$/.test(etag) && hash.digest('hex') !== etag ? `sha256 differs from the ETag ${etag}` : undefined;
  if (problem) {
    await rm(partial, { force: true });
    throw new DataError(named, `corrupt download: ${problem}`);
  }
  await rename(partial, blob);
}
