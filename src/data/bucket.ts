/**
 * Length bucketing: batches of rows with similar lengths waste little padding,
 * which matters more on WebGPU/wasm than on CUDA. Rows are sorted by length,
 * cut into batches, and the batch order shuffled by the seed so training does
 * not see all short examples first.
 */
import { hash32 } from './split.js';
import { checkOptions, optionKeys } from '../util/options.js';

export interface BucketOptions {
  seed?: number;
  /** Shuffle the batch order (default true); false gives shortest-first order, handy for evaluation. */
  shuffle?: boolean;
  /** Keep the last, smaller batch (default true). */
  keepLast?: boolean;
}

/** @returns batches of row indices */
export function bucketByLength(lengths: readonly number[], batchSize: number, opts: BucketOptions = {}): number[][] {
  checkOptions('bucketByLength', opts, optionKeys<BucketOptions>()(['seed', 'shuffle', 'keepLast']));
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const seed = opts.seed ?? 0;
  // A seeded tie-break, so equal-length rows are mixed differently per seed.
  const tie = lengths.map((_, i) => hash32(String(i), seed));
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || tie[a]! - tie[b]!);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  if (!(opts.keepLast ?? true) && batches.length > 0 && batches[batches.length - 1]!.length < batchSize) batches.pop();
  if (opts.shuffle ?? true) {
    const keys = batches.map((_, i) => hash32(`batch${i}`, seed));
    return batches.map((b, i) => ({ b, k: keys[i]! })).sort((x, y) => x.k - y.k).map((e) => e.b);
  }
  return batches;
}
