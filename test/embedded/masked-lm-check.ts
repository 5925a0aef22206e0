/**
 * The embedded masked LM's held-out check (test/embedded): the model folder's
 * own heldout-tokens.bin (encoder ids, written by scripts/pretrain-mlm.ts)
 * cut into windows framed by <s> … </s>, 15% of the positions replaced by
 * <mask> with a fixed hash (no 80/10/10: every chosen position is masked), and
 * the model's accuracy and perplexity there against an add-one unigram from
 * the folder's unigram-counts.json on the same positions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../../src/models/load.js';

export interface MaskedLmCheck { accuracy: number; perplexity: number; unigramAccuracy: number; unigramPerplexity: number; masked: number }

const BOS = 0, EOS = 2;

export function maskedLmCheck(dir: string, opts: { windows?: number; block?: number } = {}): MaskedLmCheck {
  const block = opts.block ?? 128, windows = opts.windows ?? 16, span = block - 2;
  const buf = readFileSync(join(dir, 'heldout-tokens.bin'));
  const ids = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
  const counts = JSON.parse(readFileSync(join(dir, 'unigram-counts.json'), 'utf8')) as number[];
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size: number };
  if (counts.length !== config.vocab_size) throw new Error(`${join(dir, 'unigram-counts.json')}: ${counts.length} counts, but config.json's vocab_size is ${config.vocab_size}`);
  const maskId = config.vocab_size - 1;
  const total = counts.reduce((a, b) => a + b + 1, 0);
  const top = counts.indexOf(Math.max(...counts));
  const inputIds: number[][] = [], labels: number[][] = [];
  for (let w = 0; w < windows && (w + 1) * span <= ids.length; w++) {
    const row = [BOS, ...ids.subarray(w * span, (w + 1) * span), EOS];
    // Knuth's multiplicative hash of the position: the same 15% for every model
    const lab = row.map((y, t) => (t > 0 && t < block - 1 && ((Math.imul(w * block + t, 2654435761) >>> 0) / 2 ** 32) < 0.15 ? y : -100));
    inputIds.push(row.map((y, t) => (lab[t] === -100 ? y : maskId)));
    labels.push(lab);
  }
  const model = loadModelFromDir(dir);
  const [logp, arg] = tf.tidy(() => {
    const lp = tf.logSoftmax(model.forward({ inputIds }).logits);
    return [lp, tf.argMax(lp, -1)];
  });
  const lpv = logp.arraySync() as number[][][], av = arg.arraySync() as number[][];
  tf.dispose([logp, arg]);
  model.dispose();
  let nll = 0, hit = 0, unll = 0, uhit = 0, n = 0;
  labels.forEach((row, r) => row.forEach((y, t) => {
    if (y === -100) return;
    n++;
    nll -= lpv[r]![t]![y]!; hit += +(av[r]![t] === y);
    unll -= Math.log((counts[y]! + 1) / total); uhit += +(y === top);
  }));
  return { accuracy: hit / n, perplexity: Math.exp(nll / n), unigramAccuracy: uhit / n, unigramPerplexity: Math.exp(unll / n), masked: n };
}
