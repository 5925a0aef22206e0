/**
 * Where a notebook's numbers came from: the same notebook gives other numbers
 * on another backend, GPU, commit or base model, and a saved output that does
 * not say which is a number nobody can check.
 *
 * @example
 * provenance({ model: 'sharelora-gpt2-mini' })   // last expression of a cell: shows a table
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo } from '../backend/index.js';
import { cachedSnapshot, hubCacheDir, isHubId, repoCacheDir } from '../hub/hub.js';
import { embeddedModels, localModelDir } from '../models/resolve.js';
import { checkOptions, optionKeys, OptionsError } from '../util/options.js';
import { MIME_BUNDLE, type DisplayOutput } from './mime.js';
import { table } from './table.js';
import { computeSwitchesSet, flags } from '../backend/flags.js';

/** this package's root (compiled code lives in dist/src/notebook) */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ProvenanceOptions {
  /** the base model as passed to loadModel: an embedded name, a folder, or a Hub id that loadModel has put in the HF cache */
  model?: string;
  /** when the run began (Date.now() or a Date); default: when this process (the kernel, or `sharelora run`) started */
  start?: number | Date;
}

export interface Provenance {
  date: string;
  /** seconds from `start` (or process start) to now */
  wallSeconds: number;
  backend: string;
  /** the GPU adapter's name on webgpu; the CPU kind on wasm / cpu */
  device: string;
  cpu: string;
  node: string;
  sharelora: string;
  /** $SHARELORA_COMMIT when set, else git HEAD of the package (`+ local changes` when the tracked files differ), else 'unknown' */
  commit: string;
  model?: string;
  /** sha256 of the weight files (model*.safetensors, concatenated in name order), first 16 hex digits */
  modelSha256?: string;
  /** the SHARELORA_* switches set that change how the backend computes (webgpu kernels, GEMM, pool, step replay), or 'defaults' */
  switches: string;
}


function gitCommit(): string {
  // whoever copied the tree says which commit it is: a copy can carry a stale .git (the GPU machine's copy carried the clone's first HEAD)
  if (flags.commit) return `${flags.commit} (SHARELORA_COMMIT)`;
  try {
    const run = (args: string[]) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    const head = run(['rev-parse', 'HEAD']);
    const dirty = run(['status', '--porcelain', '--untracked-files=no']) !== '';
    return `${head.slice(0, 12)}${dirty ? ' + local changes' : ''}`;
  } catch {
    return 'unknown (not a git checkout; set SHARELORA_COMMIT)';
  }
}

function version(): string {
  try {
    return String((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

function weightsHash(model: string): string {
  // synchronous, so that provenance() is a plain object a cell can show; a Hub model is hashed from the cache loadModel filled, never downloaded here
  const dir = localModelDir(model) ?? (isHubId(model) ? cachedSnapshot(repoCacheDir(hubCacheDir(), model), 'main') : undefined);
  if (dir === undefined) throw new OptionsError('provenance', 'model', `"${model}" is not a model folder, an embedded model (${embeddedModels().join(', ') || 'none'}) or a Hub id in the HF cache; give the name loadModel was given`);
  const files = readdirSync(dir).filter((f) => /^model.*\.safetensors$/.test(f)).sort();
  if (!files.length) throw new OptionsError('provenance', 'model', `"${model}" resolves to ${dir}, which holds no model*.safetensors file to hash`);
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(join(dir, f)));
  return h.digest('hex').slice(0, 16);
}

const FIELDS: Record<keyof Provenance, string> = {
  date: 'date (UTC)', wallSeconds: 'wall time (s)', backend: 'backend', device: 'device', cpu: 'CPU', node: 'Node',
  sharelora: 'sharelora', commit: 'commit', model: 'base model', modelSha256: 'weights sha256 (16 hex)', switches: 'switches',
};

let nvidiaName: string | null | undefined;
function nvidiaSmiName(): string | null {
  if (nvidiaName === undefined) {
    try {
      nvidiaName = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim() || null;
    } catch {
      nvidiaName = null;
    }
  }
  return nvidiaName;
}

/**
 * Dawn's adapter info on NVIDIA's Vulkan driver names the driver ("nvidia NVIDIA: 580.159.04"), not the card, and an
 * H100 and an H200 time differently: where nvidia-smi answers, the card's name goes first.
 */
export function withGpuName(backend: string, device: string, cardName: () => string | null = nvidiaSmiName): string {
  if (backend !== 'webgpu' || !/nvidia/i.test(device)) return device;
  const name = cardName();
  return name ? `${name} (${device})` : device;
}

/**
 * The run's provenance as a plain object (JSON-serialisable; its fields are
 * listed in Provenance) that shows as a two-column table in a notebook.
 */
export function provenance(options: ProvenanceOptions = {}): Provenance {
  checkOptions('provenance', options, optionKeys<ProvenanceOptions>()(['model', 'start']));
  const { model, start } = options;
  if (model !== undefined && (typeof model !== 'string' || model === '')) throw new OptionsError('provenance', 'model', `must be a model name or folder as given to loadModel; got ${JSON.stringify(model)}`);
  const startMs = start === undefined ? Date.now() - process.uptime() * 1000 : start instanceof Date ? start.getTime() : start;
  if (typeof startMs !== 'number' || !Number.isFinite(startMs) || startMs > Date.now()) throw new OptionsError('provenance', 'start', `must be a past time (Date.now() or a Date); got ${String(start)}`);
  const info = backendInfo();
  const c = cpus();
  const p: Provenance = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    wallSeconds: Math.round((Date.now() - startMs) / 100) / 10,
    backend: info?.name ?? tf.getBackend() ?? 'none',
    device: info ? withGpuName(info.name, info.device) : 'unknown (the backend was not chosen with useBackend)',
    cpu: c.length ? `${c[0].model.trim()} × ${c.length}` : 'unknown',
    node: process.version,
    sharelora: version(),
    commit: existsSync(ROOT) ? gitCommit() : 'unknown',
    switches: computeSwitchesSet(),
  };
  if (model !== undefined) {
    p.model = model;
    p.modelSha256 = weightsHash(model);
  }
  const rows = () => (Object.keys(FIELDS) as (keyof Provenance)[]).filter((k) => p[k] !== undefined).map((k) => ({ field: FIELDS[k], value: String(p[k]) }));
  // not enumerable: the object stays plain data for JSON.stringify and Object.keys
  Object.defineProperty(p, MIME_BUNDLE, { enumerable: false, value: (): DisplayOutput => table(rows(), { title: 'provenance' })[MIME_BUNDLE]() });
  return p;
}
