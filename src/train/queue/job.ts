/**
 * What one queued run carries, and its id. The id is a hash of grid name,
 * recipe hash, export and configuration, so the same run queued twice (a
 * re-run cell, two notebooks) is one job, and its stored result is found again.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { keyId, signJob, verifyJob } from './sign.js';
import type { Recipe } from './recipe.js';

/** One BullMQ queue for every grid: workers need not know grid names. */
export const QUEUE_NAME = 'sharelora-grid';

export interface JobData {
  v: 1;
  grid: string;
  index: number;
  total: number;
  config: Record<string, unknown>;
  recipe: Recipe;
  keyId: string;
  sig: string;
}

/** What a worker returns for a finished run (BullMQ stores it as the job's return value). */
export interface JobResult {
  /** metrics in wire form (see metricsToWire) */
  metrics: unknown;
  worker: string;
  seconds: number;
}

export function checkGridName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(name)) {
    throw new TypeError(`runGrid: name must be 1–100 letters, digits, '_', '.' or '-' (it keys the stored results: the same name finds them again); got ${JSON.stringify(name)}`);
  }
  return name;
}

export function jobId(grid: string, recipe: Recipe, config: Record<string, unknown>): string {
  const h = createHash('sha256').update(canonicalJson({ grid, hash: recipe.hash, export: recipe.export, config }, 'config')).digest('hex');
  return `${grid}.${h.slice(0, 32)}`;
}

export function makeJobData(grid: string, recipe: Recipe, config: Record<string, unknown>, index: number, total: number, key: string): JobData {
  const sig = signJob({ grid, export: recipe.export, hash: recipe.hash, source: recipe.source, config }, key);
  return { v: 1, grid, index, total, config, recipe, keyId: keyId(key), sig };
}

/** Why a worker must not run this job, or undefined when it may. */
export function refuseReason(data: unknown, key: string): string | undefined {
  const d = data as Partial<JobData> | null;
  const r = d?.recipe as Partial<Recipe> | undefined;
  if (!d || typeof d !== 'object' || d.v !== 1 || typeof d.grid !== 'string' || !d.config || typeof d.config !== 'object'
    || !r || typeof r.source !== 'string' || typeof r.hash !== 'string' || typeof r.export !== 'string' || typeof r.file !== 'string') {
    return 'not a sharelora grid job (missing or malformed fields); only runGrid queues jobs for sharelora workers';
  }
  if (d.sig === undefined) return 'the job is not signed; only runGrid with the same SHARELORA_QUEUE_KEY as this worker may queue jobs';
  const part = { grid: d.grid, export: r.export, hash: r.hash, source: r.source, config: d.config };
  let ok: boolean;
  try {
    ok = verifyJob(part, d.sig, key);
  } catch (e) {
    return `the job cannot be checked: ${(e as Error).message}`;
  }
  if (!ok) {
    const mine = keyId(key);
    return d.keyId !== mine
      ? `signature check failed: the job says it was signed with key id ${JSON.stringify(d.keyId)}, this worker's key id is ${mine} — if you queued it, give this worker the same SHARELORA_QUEUE_KEY`
      : 'signature check failed: the job was altered after it was signed (or forged)';
  }
  if (createHash('sha256').update(r.source).digest('hex') !== r.hash) return 'the recipe source does not match its hash';
  return undefined;
}
