/**
 * A queued job is code that a worker will run, so only jobs signed with the
 * shared key run. HMAC-SHA256 over the canonical JSON of everything that
 * decides what runs: grid name, recipe export, source and its hash, and the
 * configuration. The key id (an HMAC of a fixed label) travels with the job so
 * that a worker holding a different key can say so instead of "forged".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { flags } from '../../backend/flags.js';
import { canonicalJson } from './canonical.js';

export const KEY_ENV = 'SHARELORA_QUEUE_KEY';
const MIN_KEY_LENGTH = 16;

export interface SignedPart {
  grid: string;
  export: string;
  hash: string;
  source: string;
  config: Record<string, unknown>;
}

/** The key from an option or SHARELORA_QUEUE_KEY; `who` names the caller in errors. */
export function resolveKey(who: string, explicit?: string): string {
  const key = explicit ?? flags.queueKey;
  if (key === undefined || key === '') {
    throw new Error(`${who}: queued jobs are code, so they must be signed: set ${KEY_ENV} to the same secret (≥ ${MIN_KEY_LENGTH} characters, e.g. from \`openssl rand -hex 32\`) where the grid runs and on every worker (or pass it: runGrid queue.key, sharelora worker --key)`);
  }
  if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH) throw new RangeError(`${who}: the queue key must be at least ${MIN_KEY_LENGTH} characters (e.g. \`openssl rand -hex 32\`); got ${typeof key === 'string' ? key.length : typeof key}`);
  return key;
}

export function keyId(key: string): string {
  return createHmac('sha256', key).update('sharelora-queue-key-id').digest('hex').slice(0, 12);
}

export function signJob(part: SignedPart, key: string): string {
  return createHmac('sha256', key).update(payload(part)).digest('hex');
}

/** true when `sig` is this key's signature of `part`; constant time in the signature. */
export function verifyJob(part: SignedPart, sig: unknown, key: string): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = Buffer.from(signJob(part, key), 'hex');
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}

function payload(p: SignedPart): string {
  return canonicalJson({ v: 1, grid: p.grid, export: p.export, hash: p.hash, source: p.source, config: p.config }, 'job');
}
