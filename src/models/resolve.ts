/**
 * Model names that work from any working directory. A name is looked up as
 *   1. a local folder (relative to the working directory, or absolute);
 *   2. a model embedded in this package's data/ folder, by its folder name
 *      (`sharelora-gpt2-mini`) or package-relative path (`data/sharelora-gpt2-mini`);
 *   3. a Hugging Face Hub id (downloaded into the HF cache; loadTokenizer,
 *      which is synchronous, only reads that cache).
 * A name none of these provides fails with one ModelNotFoundError that says
 * what was tried and lists the embedded names.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedSnapshot, hubCacheDir, isHubId, repoCacheDir, resolveModelPath, type ResolveOptions } from '../hub/hub.js';
import { loadTokenizer as loadTokenizerFromDir } from '../data/load-tokenizer.js';
import type { TextTokenizer } from '../data/tokenizer.js';

/** this package's data/ folder (compiled code lives in dist/src/models) */
export const EMBEDDED_DIR = fileURLToPath(new URL('../../../data/', import.meta.url));

export class ModelNotFoundError extends Error {
  constructor(readonly model: string, readonly embedded: string[], readonly hubProblem: string) {
    super(`model "${model}" not found: it is not a local folder (${resolve(model)} does not exist), not a model embedded in ${EMBEDDED_DIR} ` +
      `(embedded: ${embedded.length ? embedded.join(', ') : 'none'}), and ${hubProblem}`);
    this.name = 'ModelNotFoundError';
  }
}

/** folder names under data/ that hold a model (config.json) */
export function embeddedModels(): string[] {
  if (!existsSync(EMBEDDED_DIR)) return [];
  return readdirSync(EMBEDDED_DIR).filter((n) => existsSync(resolve(EMBEDDED_DIR, n, 'config.json'))).sort();
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** steps 1 and 2: a folder, or undefined when the name is neither local nor embedded */
export function localModelDir(name: string): string | undefined {
  if (existsSync(name)) return name;
  const embedded = embeddedModels();
  const bare = name.replace(/^(\.\/)?data\//, '').replace(/\/+$/, '');
  return embedded.includes(bare) && isDir(resolve(EMBEDDED_DIR, bare)) ? resolve(EMBEDDED_DIR, bare) : undefined;
}

/** A model folder for `name`: local, embedded, else the Hub (downloading into the HF cache). */
export async function resolveModelDir(name: string, opts: ResolveOptions = {}): Promise<string> {
  const local = localModelDir(name);
  if (local !== undefined) return local;
  if (!isHubId(name)) throw new ModelNotFoundError(name, embeddedModels(), 'it is not a Hugging Face Hub id ("name" or "org/name") either');
  try {
    return await resolveModelPath(name, opts);
  } catch (e) {
    throw new ModelNotFoundError(name, embeddedModels(), `the Hugging Face Hub could not provide it: ${(e as Error).message}`);
  }
}

/**
 * The tokenizer of a model folder, an embedded model or a Hub model already
 * in the HF cache (loadModel(id) puts it there).
 * @example const tok = loadTokenizer('sharelora-gpt2-mini');
 */
export function loadTokenizer(name: string, opts: Pick<ResolveOptions, 'cacheDir' | 'revision'> = {}): TextTokenizer {
  const local = localModelDir(name);
  if (local !== undefined) return loadTokenizerFromDir(local);
  const hub = cachedHubDir(name, opts);
  if (hub.dir) return loadTokenizerFromDir(hub.dir);
  throw new ModelNotFoundError(name, embeddedModels(), hub.problem!);
}

function cachedHubDir(name: string, opts: Pick<ResolveOptions, 'cacheDir' | 'revision'>): { dir?: string; problem?: string } {
  if (!isHubId(name)) return { problem: 'it is not a Hugging Face Hub id ("name" or "org/name") either' };
  const repo = repoCacheDir(hubCacheDir(opts.cacheDir), name);
  const dir = cachedSnapshot(repo, opts.revision ?? 'main');
  return dir ? { dir } : { problem: `the Hugging Face Hub cache has no complete snapshot of it at ${repo} (loadModel("${name}") downloads one)` };
}

