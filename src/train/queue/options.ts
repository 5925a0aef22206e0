/**
 * Option checking shared by the queue's entry points (unknown keys go through
 * util/options.ts's checkOptions: a misspelt option that is silently ignored
 * costs a whole grid on many machines).
 */

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
