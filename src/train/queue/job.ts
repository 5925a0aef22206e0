/**
 * What one queued run carries, its id, and what a worker returns. The id is a
 * hash of grid name, recipe hash, export and configuration, so the same run
 * queued twice (a re-run cell, two notebooks) is one job, and its stored
 * result is found again. Everything here may be read back from Redis written
 * by someone else, so every field is checked before it is used.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { keyId, sign, verify } from './sign.js';
import type { Recipe } from './recipe.js';

/** One BullMQ queue for every grid: workers need not know grid names. */
export const QUEUE_NAME = 'sharelora-grid';

/** How long a job's signature is good for: a grid queued and left unrun longer is re-signed by running its cell again. */
export const SIGNATURE_TTL_MS = 7 * 24 * 3600 * 1000;

export interface JobData {
  v: 2;
  /** the BullMQ job id it was signed for: the same data under another id is refused */
  id: string;
  grid: string;
  index: number;
  total: number;
  config: Record<string, unknown>;
  recipe: Recipe;
  /** a run longer than this is stopped and fails (ms; null: no limit) */
  timeoutMs: number | null;
  /** when the signature stops being accepted (ms since the epoch) */
  expires: number;
  keyId: string;
  sig: string;
}

/** What a worker returns for a finished run (BullMQ stores it as the job's return value). */
export interface JobResult {
  /** metrics in wire form (see metricsToWire) */
  metrics: unknown;
  worker: string;
  seconds: number;
  /** sign('result', …) over the job id, the job's signature, metrics, worker and seconds */
  sig: string;
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

const signedPart = (d: Omit<JobData, 'keyId' | 'sig'>): Record<string, unknown> => ({
  id: d.id, grid: d.grid, index: d.index, total: d.total, config: d.config,
  recipe: { file: d.recipe.file, export: d.recipe.export, hash: d.recipe.hash, source: d.recipe.source },
  timeoutMs: d.timeoutMs, expires: d.expires,
});

export function makeJobData(grid: string, recipe: Recipe, config: Record<string, unknown>, index: number, total: number, key: string,
  o: { timeoutMs?: number | null; now?: number } = {}): JobData {
  const d = { v: 2 as const, id: jobId(grid, recipe, config), grid, index, total, config, recipe: { file: recipe.file, export: recipe.export, hash: recipe.hash, source: recipe.source }, timeoutMs: o.timeoutMs ?? null, expires: (o.now ?? Date.now()) + SIGNATURE_TTL_MS };
  return { ...d, keyId: keyId(key), sig: sign('job', signedPart(d), key) };
}

export type JobCheck =
  | { ok: true; data: JobData }
  /** leave: signed with a key this worker does not hold; another worker may hold it */
  | { ok: false; reason: string; leave: boolean };

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Whether a worker may run `data` as job `id` (undefined: the id the data names) at `now`, and why not. */
export function checkJob(data: unknown, key: string, id?: string, now = Date.now()): JobCheck {
  const refuse = (reason: string, leave = false): JobCheck => ({ ok: false, reason, leave });
  const d = data as Partial<JobData>;
  const r = (isObj(d) ? d.recipe : undefined) as Partial<Recipe> | undefined;
  if (!isObj(d) || !isObj(r) || typeof d.grid !== 'string' || !isObj(d.config) || typeof r.source !== 'string' || typeof r.hash !== 'string'
    || typeof r.export !== 'string' || typeof r.file !== 'string') {
    return refuse('not a sharelora grid job (missing or malformed fields); only runGrid queues jobs for sharelora workers');
  }
  if (d.sig === undefined) return refuse('the job is not signed; only runGrid with the same SHARELORA_QUEUE_KEY as this worker may queue jobs');
  if (d.v !== 2) return refuse(`the job has format version ${JSON.stringify(d.v)}, this worker reads 2: it was queued by another sharelora version; run the grid again from this version to queue it anew`);
  if (typeof d.id !== 'string' || !isCount(d.index) || !isCount(d.total) || d.index >= d.total || !(d.timeoutMs === null || (isCount(d.timeoutMs) && d.timeoutMs > 0)) || !isCount(d.expires)) {
    return refuse('not a sharelora grid job (malformed id, index, total, timeoutMs or expires)');
  }
  const mine = keyId(key);
  if (d.keyId !== mine) {
    return refuse(`the job says it was signed with key id ${JSON.stringify(d.keyId)}, this worker's key id is ${mine}: left for a worker with that key — if you queued it, give this worker the same SHARELORA_QUEUE_KEY`, true);
  }
  let ok: boolean;
  try {
    ok = verify('job', signedPart(d as JobData), d.sig, key);
  } catch (e) {
    return refuse(`the job cannot be checked: ${(e as Error).message}`);
  }
  if (!ok) return refuse('signature check failed: the job was altered after it was signed (or forged)');
  if (id !== undefined && id !== d.id) return refuse(`signature check failed: the job was signed as ${JSON.stringify(d.id)}, not for this id (a copy replayed under another id)`);
  if (now > d.expires) return refuse(`the job's signature expired at ${new Date(d.expires).toISOString()}; run the grid again to queue it freshly signed`);
  if (createHash('sha256').update(r.source).digest('hex') !== r.hash) return refuse('the recipe source does not match its hash');
  return { ok: true, data: d as JobData };
}

/** Why a worker must not run this job, or undefined when it may. */
export function refuseReason(data: unknown, key: string, id?: string, now?: number): string | undefined {
  const c = checkJob(data, key, id, now);
  return c.ok ? undefined : c.reason;
}

/** The signed result a worker returns for job `job` (data already checked). */
export function signResult(job: JobData, metrics: unknown, worker: string, seconds: number, key: string): JobResult {
  return { metrics, worker, seconds, sig: sign('result', { id: job.id, job: job.sig, metrics, worker, seconds }, key) };
}

/**
 * A stored return value, checked: the result of job `id` whose data carried
 * `jobSig`, signed with `key`. Anything else (a plain BullMQ worker's return,
 * null, a result copied from another job) gives the reason it is refused.
 */
export function checkResult(value: unknown, id: string, jobSig: unknown, key: string): { ok: true; result: JobResult } | { ok: false; reason: string } {
  const v = value as Partial<JobResult>;
  if (!isObj(v) || typeof v.worker !== 'string' || typeof v.seconds !== 'number' || !Number.isFinite(v.seconds) || v.seconds < 0 || !('metrics' in v)) {
    return { ok: false, reason: 'result refused: not the result of a sharelora worker (missing or malformed fields)' };
  }
  if (v.sig === undefined) return { ok: false, reason: 'result refused: not signed (stored by something other than a sharelora worker with this grid\'s key)' };
  let ok: boolean;
  try {
    ok = typeof jobSig === 'string' && verify('result', { id, job: jobSig, metrics: v.metrics, worker: v.worker, seconds: v.seconds }, v.sig, key);
  } catch (e) {
    return { ok: false, reason: `result refused: it cannot be checked (${(e as Error).message})` };
  }
  if (!ok) return { ok: false, reason: 'result refused: its signature does not match (altered, forged, or signed with another key or for another job)' };
  return { ok: true, result: v as JobResult };
}
