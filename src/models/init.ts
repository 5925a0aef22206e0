/**
 * Randomly initialised models, with Hugging Face's init (N(0, 0.02) weights,
 * zero biases, unit norms; GPT-2 also scales residual projections by
 * 1/sqrt(2·n_layer)). Used for pretraining from scratch, for the benchmarks'
 * GPT-2-small / LLaMA shapes, and as the "random initialisation" baseline.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.js';
import { parseConfig } from './config.js';
import { GPT2 } from './gpt2.js';
import { Llama } from './llama.js';
import type { RawTensor } from './safetensors.js';
import type { Model, Task } from './types.js';
import { WeightStore } from './weights.js';

function shapesOf(raw: Record<string, unknown>): Map<string, number[]> {
  const c = parseConfig(raw, 'config');
  const s = new Map<string, number[]>();
  const C = c.hidden;
  if (c.modelType === 'gpt2') {
    s.set('transformer.wte.weight', [c.vocabSize, C]).set('transformer.wpe.weight', [c.maxPositions, C]);
    for (let i = 0; i < c.layers; i++) {
      const h = `transformer.h.${i}`;
      for (const n of ['ln_1', 'ln_2']) s.set(`${h}.${n}.weight`, [C]).set(`${h}.${n}.bias`, [C]);
      s.set(`${h}.attn.c_attn.weight`, [C, 3 * C]).set(`${h}.attn.c_attn.bias`, [3 * C]);
      s.set(`${h}.attn.c_proj.weight`, [C, C]).set(`${h}.attn.c_proj.bias`, [C]);
      s.set(`${h}.mlp.c_fc.weight`, [C, c.intermediate]).set(`${h}.mlp.c_fc.bias`, [c.intermediate]);
      s.set(`${h}.mlp.c_proj.weight`, [c.intermediate, C]).set(`${h}.mlp.c_proj.bias`, [C]);
    }
    s.set('transformer.ln_f.weight', [C]).set('transformer.ln_f.bias', [C]);
  } else if (c.modelType === 'llama') {
    const { heads: H, kvHeads: K, headDim: D, intermediate: I } = c;
    s.set('model.embed_tokens.weight', [c.vocabSize, C]);
    for (let i = 0; i < c.layers; i++) {
      const p = `model.layers.${i}`;
      s.set(`${p}.input_layernorm.weight`, [C]).set(`${p}.post_attention_layernorm.weight`, [C]);
      s.set(`${p}.self_attn.q_proj.weight`, [H * D, C]).set(`${p}.self_attn.k_proj.weight`, [K * D, C]);
      s.set(`${p}.self_attn.v_proj.weight`, [K * D, C]).set(`${p}.self_attn.o_proj.weight`, [C, H * D]);
      s.set(`${p}.mlp.gate_proj.weight`, [I, C]).set(`${p}.mlp.up_proj.weight`, [I, C]).set(`${p}.mlp.down_proj.weight`, [C, I]);
    }
    s.set('model.norm.weight', [C]);
    if (!c.tieWordEmbeddings) s.set('lm_head.weight', [c.vocabSize, C]);
  } else {
    throw new Error(`random init is available for gpt2 and llama, not ${c.modelType}`);
  }
  return s;
}

/** A random model of a config.json object (e.g. GPT-2-small: n_embd 768, n_layer 12, n_head 12, vocab_size 50257). */
export function randomModel(configJson: Record<string, unknown>, opts: { seed?: number; task?: Task } = {}): Model {
  const config = parseConfig(configJson, 'config');
  const rng = new Rng(opts.seed ?? 0);
  const std = typeof configJson.initializer_range === 'number' ? configJson.initializer_range : 0.02;
  const tensors = new Map<string, { t: RawTensor; file: string }>();
  for (const [name, shape] of shapesOf(configJson)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(name)) data = new Float32Array(n).fill(1);
    else if (name.endsWith('.bias')) data = new Float32Array(n);
    else data = rng.normal(n, /c_proj\.weight$/.test(name) ? std / Math.sqrt(2 * config.layers) : std);
    tensors.set(name, { t: { dtype: 'F32', shape, data }, file: '(random init)' });
  }
  const store = new WeightStore(tensors, '(random init)');
  const task = opts.task ?? 'causal-lm';
  if (task === 'seq-cls' && !config.numLabels) config.numLabels = 2;
  const score = () => tf.tensor2d(rng.normal(config.numLabels * config.hidden, std), [config.numLabels, config.hidden]);
  return config.modelType === 'gpt2' ? new GPT2(config, store, task, task === 'seq-cls' ? { score: score() } : undefined)
    : new Llama(config, store, task, task === 'seq-cls' ? { score: score() } : undefined);
}
