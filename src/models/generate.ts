/**
 * Decoding for the causal LMs: greedy, temperature/top-k sampling, or beam
 * search. No KV cache: each new token re-runs the prefix, which is fine at
 * notebook scale and keeps the model code a single forward().
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
  seed?: number;
}

async function lastLogProbs(model: Model, seqs: number[][]): Promise<Float32Array[]> {
  // left-padding to a common length would shift GPT-2's positions, so ragged rows run one by one
  const out: Float32Array[] = [];
  for (const s of seqs) {
    const lp = tf.tidy(() => {
      const { logits } = model.forward({ inputIds: [s] });
      const V = logits.shape[2]!;
      return tf.logSoftmax(tf.reshape(tf.slice(logits, [0, s.length - 1, 0], [1, 1, V]), [V]));
    });
    out.push(await lp.data() as Float32Array);
    lp.dispose();
  }
  return out;
}

/** Continue each prompt (token ids); returns only the new tokens. */
const GENERATE_KEYS = optionKeys<GenerateOptions>()(['maxNewTokens', 'temperature', 'topK', 'numBeams', 'lengthPenalty', 'eosTokenId', 'seed']);

export async function generate(model: Model, prompts: number[][], o: GenerateOptions = {}): Promise<number[][]> {
  checkOptions('generate', o, GENERATE_KEYS);
  if (model.task !== 'causal-lm') throw new Error(`generate needs a causal LM; this ${model.family} model is a ${model.task} model`);
  const maxNew = o.maxNewTokens ?? 32;
  const maxLen = model.config.maxPositions;
  const rng = new Rng(o.seed ?? 0);
  const results: number[][] = [];
  for (const prompt of prompts) {
    if (!prompt.length) throw new Error('generate: a prompt is empty (start it with a BOS/EOS token)');
    if ((o.numBeams ?? 1) > 1) { results.push(await beam(model, prompt, maxNew, o)); continue; }
    const out: number[] = [];
    const seq = [...prompt];
    for (let i = 0; i < maxNew && seq.length < maxLen; i++) {
      const lp = (await lastLogProbs(model, [seq]))[0];
      const tok = pick(lp, o, rng);
      out.push(tok);
      seq.push(tok);
      if (tok === o.eosTokenId) break;
    }
    results.push(out);
  }
  return results;
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

async function beam(model: Model, prompt: number[], maxNew: number, o: GenerateOptions): Promise<number[]> {
  const width = o.numBeams!;
  const lpen = o.lengthPenalty ?? 1;
  let beams = [{ toks: [] as number[], score: 0, done: false }];
  for (let step = 0; step < maxNew && prompt.length + step < model.config.maxPositions; step++) {
    const live = beams.filter((b) => !b.done);
    if (!live.length) break;
    const lps = await lastLogProbs(model, live.map((b) => [...prompt, ...b.toks]));
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
