/**
 * A queued job is code that a worker will run, and a stored result is what a
 * table will show, so both are signed with the shared key: HMAC-SHA256 over
 * canonical JSON. A job's signature covers everything the runner reads (its
 * id, grid name, position, recipe file name, export, source and hash, the
 * configuration, the run's time limit) and when it expires; a result's covers
 * the job id, the job's signature, the metrics, the worker's name and the
 * seconds. The two are told apart by a label inside the signed text, so one
 * can never pass for the other. The key id (an HMAC of a fixed label) travels
 * with a job so that a worker holding a different key can say so instead of
 * "forged".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { flags } from '../../backend/flags.js';
import { canonicalJson } from './canonical.js';

export const KEY_ENV = 'SHARELORA_QUEUE_KEY';
const MIN_KEY_LENGTH = 16;
/** estimated bits a key must carry: 16 random hex characters give 64 */
const MIN_KEY_BITS = 48;

export type SignedKind = 'job' | 'result';

/** The key from an option or SHARELORA_QUEUE_KEY; `who` names the caller in errors. */
export function resolveKey(who: string, explicit?: string): string {
  const key = explicit ?? flags.queueKey;
  if (key === undefined || key === '') {
    throw new Error(`${who}: queued jobs are code, so they must be signed: set ${KEY_ENV} to the same secret (≥ ${MIN_KEY_LENGTH} characters, e.g. from \`openssl rand -hex 32\`) where the grid runs and on every worker (or pass it: runGrid queue.key, sharelora worker --key)`);
  }
  if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH) throw new RangeError(`${who}: the queue key must be at least ${MIN_KEY_LENGTH} characters (e.g. \`openssl rand -hex 32\`); got ${typeof key === 'string' ? key.length : typeof key}`);
  const bits = keyBits(key);
  if (bits < MIN_KEY_BITS) {
    throw new RangeError(`${who}: the queue key is too easy to guess (${key.length} characters but only ${Math.floor(bits)} bits by their variety: repeated or few distinct characters); use a random one, e.g. \`openssl rand -hex 32\``);
  }
  return key;
}

/**
 * Length × the Shannon entropy of the key's own character frequencies: 0 for
 * "aaaaaaaaaaaaaaaa", 32 for "abcdabcdabcdabcd", about 200 for 64 random hex
 * digits. A floor against keys typed as placeholders, not a strength meter.
 */
export function keyBits(key: string): number {
  const counts = new Map<string, number>();
  for (const c of key) counts.set(c, (counts.get(c) ?? 0) + 1);
  const n = [...key].length;
  let h = 0;
  for (const k of counts.values()) h -= (k / n) * Math.log2(k / n);
  return h * n;
}

export function keyId(key: string): string {
  return createHmac('sha256', key).update('sharelora-queue-key-id').digest('hex').slice(0, 12);
}

export function sign(kind: SignedKind, part: Record<string, unknown>, key: string): string {
  return createHmac('sha256', key).update(canonicalJson({ sharelora: kind, v: 2, part }, kind)).digest('hex');
}

/** true when `sig` is this key's signature of `part`; constant time in the signature. */
export function verify(kind: SignedKind, part: Record<string, unknown>, sig: unknown, key: string): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = Buffer.from(sign(kind, part, key), 'hex');
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}
