/**
 * A short identity for a base model, so that a training checkpoint resumes
 * only onto the model it was trained on. Two bases of the same shapes (GPT-2
 * and a fine-tune of it, two random seeds) load each other's adapters
 * without any shape error, and training on would quietly continue from
 * moments that belong to the other model.
 *
 * config: the architecture numbers ModelConfig holds (not config.json's
 * bookkeeping such as transformers_version). weights: every base tensor's
 * name, shape and up to SAMPLES evenly spaced values. Values are gathered,
 * never summed, so the hash is bit-exact on every backend. Tensors that are
 * being trained (full fine-tuning, modules_to_save heads) or that hold a
 * merged adapter are not the base and are left out by name; the names are
 * recorded so the fresh model on resume hashes the same set.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '../util/errors.js';
import type { Model } from './types.js';

const SAMPLES = 32;

export interface BaseFingerprint { config: string; weights: string; exclude: string[] }

const hex = (h: ReturnType<typeof createHash>) => h.digest('hex').slice(0, 16);

async function hashes(model: Model, exclude: ReadonlySet<string>): Promise<{ config: string; weights: string }> {
  const c = model.config;
  const config = hex(createHash('sha256').update(JSON.stringify([
    model.family, model.task, c.vocabSize, c.hidden, c.layers, c.heads, c.kvHeads, c.headDim, c.intermediate,
    c.maxPositions, c.eps, c.activation, c.numLabels, c.padTokenId, c.ropeTheta, c.tieWordEmbeddings,
  ])));
  const named = [...model.weights()].filter(([n]) => !exclude.has(n)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const [n, ref] of named) h.update(`${n}[${ref.get().shape}];`);
  if (named.length) {
    // one read-back for all tensors: on a GPU each read is a round trip
    const sample = tf.tidy(() => tf.concat(named.map(([, ref]) => {
      const t = ref.get();
      const k = Math.min(SAMPLES, t.size);
      const idx = Array.from({ length: k }, (_, j) => (k === 1 ? 0 : Math.floor((j * (t.size - 1)) / (k - 1))));
      return tf.gather(tf.reshape(t, [-1]), tf.tensor1d(idx, 'int32'));
    })));
    const values = Float32Array.from(await sample.data() as Float32Array);
    sample.dispose();
    h.update(new Uint8Array(values.buffer));
  }
  return { config, weights: hex(h) };
}

/**
 * The fingerprint of `model`'s base, leaving out what `trainable` trains
 * (identified by the tensor itself, whatever its name) and merged projections.
 */
export async function baseFingerprint(model: Model, trainable?: { namedParameters(): Map<string, tf.Variable> }): Promise<BaseFingerprint> {
  const trained = new Set<tf.Tensor>(trainable ? trainable.namedParameters().values() : []);
  const exclude = [...model.weights()].filter(([, ref]) => trained.has(ref.get())).map(([n]) => n);
  for (const [path, lin] of model.linears) if (lin.lora?.merged) exclude.push(`${path}.weight`);
  exclude.sort();
  return { ...await hashes(model, new Set(exclude)), exclude };
}

/** Refuse `model` unless it is the base `recorded` describes; `file` is the checkpoint that recorded it. */
export async function checkBaseFingerprint(model: Model, recorded: BaseFingerprint, file: string): Promise<void> {
  const now = await hashes(model, new Set(recorded.exclude));
  if (now.config === recorded.config && now.weights === recorded.weights) return;
  const what = now.config !== recorded.config ? `a different architecture (config ${recorded.config} when saved, ${now.config} now)` : `the same shapes but different weights (weights ${recorded.weights} when saved, ${now.weights} now)`;
  throw new CheckpointError(file, `was saved while training another base model: the ${model.family} model given to resume has ${what}. Resume onto the model the checkpoint was trained from`);
}

/** trainer.json's `base` field, checked */
export function parseBaseFingerprint(v: unknown, fail: (what: string) => never): BaseFingerprint {
  const o = v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : fail('"base" must be an object');
  for (const k of ['config', 'weights'] as const) if (typeof o[k] !== 'string' || !/^[0-9a-f]{16}$/.test(o[k] as string)) fail(`"base.${k}" must be 16 hex digits, got ${JSON.stringify(o[k])}`);
  if (!Array.isArray(o.exclude) || !o.exclude.every((n) => typeof n === 'string')) fail(`"base.exclude" must be a list of tensor names, got ${JSON.stringify(o.exclude)}`);
  return { config: o.config as string, weights: o.weights as string, exclude: [...o.exclude as string[]] };
}
