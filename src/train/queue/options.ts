/**
 * Option checking shared by the queue's entry points: an unknown key is an
 * error that names the closest valid key, because a misspelt option that is
 * silently ignored costs a whole grid on many machines.
 */
import { closest } from '../../util/options.js';

/** Throw on the first key of `obj` that is not in `valid`, naming the closest valid one. */
export function checkKeys(where: string, obj: object, valid: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!valid.includes(k)) throw new RangeError(`${where}: unknown option "${k}"; did you mean "${closest(k, valid)!}"? (valid: ${valid.join(', ')})`);
  }
}

export function checkPositiveInt(where: string, name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${where}: ${name} must be an integer ≥ ${min}; got ${JSON.stringify(v)}`);
  return v;
}

/** runGrid's `queue` option in full (queue/client.ts checks it) */
export interface QueueOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://… */
  url: string;
  /** the signing key, the same as the workers' (default: SHARELORA_QUEUE_KEY) */
  key?: string;
  /** tries per run before its error is final (default 3) */
  attempts?: number;
  /** first retry's delay in ms, doubling after each failure (default 10 000) */
  backoffMs?: number;
  /** how often to look at the queue, ms (default 1000) */
  pollMs?: number;
}
