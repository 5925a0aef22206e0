/**
 * Decoding for the causal LMs: greedy, temperature/top-k sampling, or beam
 * search. No KV cache: each new token re-runs the prefix, which is fine at
 * notebook scale and keeps the model code a single forward(). The prompts of
 * one call (and the beams of one prompt) go through the model together, so a
 * step costs one forward pass per `batchSize` rows rather than one per row.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkOptions, optionKeys } from '../util/options.js';
import { Rng } from '../util/rng.js';
import type { Model } from './types.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy (default) */
  temperature?: number;
  topK?: number;
  /** beam search width; > 1 ignores temperature */
  numBeams?: number;
  /** beam score = logp / length^lengthPenalty (HF's convention) */
  lengthPenalty?: number;
  eosTokenId?: number;
  /** sampling: prompt i draws from its own generator seeded seed + i, so its sample does not depend on the other prompts */
  seed?: number;
  /** rows per forward pass (default 64): the logits of a pass are rows × length × vocabulary floats */
  batchSize?: number;
}

async function lastLogProbs(model: Model, seqs: number[][], batchSize: number): Promise<Float32Array[]> {
  // Right-padding keeps every row's positions (left-padding would shift GPT-2's), and causal attention keeps
  // a row's real tokens from seeing the padding after them, so each row reads its logits at its own last token.
  const out: Float32Array[] = [];
  for (let at = 0; at < seqs.length; at += batchSize) {
    const rows = seqs.slice(at, at + batchSize);
    const T = Math.max(...rows.map((s) => s.length));
    const lp = tf.tidy(() => {
      const { logits } = model.forward({ inputIds: rows.map((s) => [...s, ...new Array<number>(T - s.length).fill(0)]) });
      const V = logits.shape[2]!;
      const last = tf.gather(tf.reshape(logits, [rows.length * T, V]), rows.map((s, i) => i * T + s.length - 1));
      return tf.logSoftmax(last);
    });
    const data = await lp.data() as Float32Array;
    const V = lp.shape[1]!;
    lp.dispose();
    rows.forEach((_, i) => out.push(data.subarray(i * V, (i + 1) * V)));
  }
  return out;
}

const GENERATE_KEYS = optionKeys<GenerateOptions>()(['maxNewTokens', 'temperature', 'topK', 'numBeams', 'lengthPenalty', 'eosTokenId', 'seed', 'batchSize']);

/** Continue each prompt (token ids); returns only the new tokens. */
export async function generate(model: Model, prompts: number[][], o: GenerateOptions = {}): Promise<number[][]> {
  checkOptions('generate', o, GENERATE_KEYS);
  if (model.task !== 'causal-lm') throw new Error(`generate needs a causal LM; this ${model.family} model is a ${model.task} model`);
  const maxNew = o.maxNewTokens ?? 32;
  const maxLen = model.config.maxPositions;
  const batchSize = o.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`generate: batchSize must be a positive integer, got ${batchSize}`);
  if (prompts.some((p) => !p.length)) throw new Error('generate: a prompt is empty (start it with a BOS/EOS token)');
  if ((o.numBeams ?? 1) > 1) {
    const results: number[][] = [];
    for (const prompt of prompts) results.push(await beam(model, prompt, maxNew, o, batchSize));
    return results;
  }
  const rngs = prompts.map((_, i) => new Rng((o.seed ?? 0) + i));
  const seqs = prompts.map((p) => [...p]);
  const outs: number[][] = prompts.map(() => []);
  let live = prompts.map((_, i) => i).filter((i) => seqs[i]!.length < maxLen);
  for (let step = 0; step < maxNew && live.length; step++) {
    const lps = await lastLogProbs(model, live.map((i) => seqs[i]!), batchSize);
    live.forEach((i, k) => {
      const tok = pick(lps[k]!, o, rngs[i]!);
      outs[i]!.push(tok);
      seqs[i]!.push(tok);
    });
    live = live.filter((i) => outs[i]!.at(-1) !== o.eosTokenId && seqs[i]!.length < maxLen);
  }
  return outs;
}

function pick(lp: Float32Array, o: GenerateOptions, rng: Rng): number {
  const temp = o.temperature ?? 0;
  if (temp <= 0) {
    let best = 0;
    for (let i = 1; i < lp.length; i++) if (lp[i] > lp[best]) best = i;
    return best;
  }
  let idx = Array.from(lp.keys());
  if (o.topK && o.topK < idx.length) idx = idx.sort((a, b) => lp[b] - lp[a]).slice(0, o.topK);
  const w = idx.map((i) => Math.exp(lp[i] / temp));
  let u = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < idx.length; j++) if ((u -= w[j]) <= 0) return idx[j];
  return idx[idx.length - 1];
}

async function beam(model: Model, prompt: number[], maxNew: number, o: GenerateOptions, batchSize: number): Promise<number[]> {
  const width = o.numBeams!;
  const lpen = o.lengthPenalty ?? 1;
  let beams = [{ toks: [] as number[], score: 0, done: false }];
  for (let step = 0; step < maxNew && prompt.length + step < model.config.maxPositions; step++) {
    const live = beams.filter((b) => !b.done);
    if (!live.length) break;
    const lps = await lastLogProbs(model, live.map((b) => [...prompt, ...b.toks]), batchSize);
    const cand = beams.filter((b) => b.done);
    live.forEach((b, i) => {
      const lp = lps[i];
      const top = Array.from(lp.keys()).sort((x, y) => lp[y] - lp[x]).slice(0, width);
      for (const t of top) cand.push({ toks: [...b.toks, t], score: b.score + lp[t], done: t === o.eosTokenId });
    });
    const norm = (b: { toks: number[]; score: number }) => b.score / Math.max(1, b.toks.length) ** lpen;
    beams = cand.sort((x, y) => norm(y) - norm(x)).slice(0, width);
  }
  return beams[0].toks;
}
