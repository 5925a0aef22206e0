/**
 * Randomly initialised models, with Hugging Face's init (N(0, 0.02) weights,
 * zero biases, unit norms; GPT-2 also scales residual projections by
 * 1/sqrt(2·n_layer); RoBERTa zeroes the padding rows of its embeddings).
 * Used for pretraining from scratch, for the benchmarks' GPT-2-small / LLaMA
 * shapes, and as the "random initialisation" baseline.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.js';
import { parseConfig } from './config.js';
import { GPT2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Roberta, type RobertaTask } from './roberta.js';
import type { RawTensor } from './safetensors.js';
import type { Model, Task } from './types.js';
import { WeightStore } from './weights.js';
import { checkOptions, describeValue, optionKeys, OptionsError } from '../util/options.js';

function shapesOf(raw: Record<string, unknown>, task: Task): Map<string, number[]> {
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
    const e = 'roberta.embeddings';
    s.set(`${e}.word_embeddings.weight`, [c.vocabSize, C]).set(`${e}.position_embeddings.weight`, [c.maxPositions, C]);
    s.set(`${e}.token_type_embeddings.weight`, [(raw.type_vocab_size as number | undefined) ?? 1, C]);
    s.set(`${e}.LayerNorm.weight`, [C]).set(`${e}.LayerNorm.bias`, [C]);
    const lin = (n: string, i: number, o: number) => s.set(`${n}.weight`, [o, i]).set(`${n}.bias`, [o]);
    for (let i = 0; i < c.layers; i++) {
      const p = `roberta.encoder.layer.${i}`;
      for (const n of ['query', 'key', 'value']) lin(`${p}.attention.self.${n}`, C, C);
      lin(`${p}.attention.output.dense`, C, C);
      s.set(`${p}.attention.output.LayerNorm.weight`, [C]).set(`${p}.attention.output.LayerNorm.bias`, [C]);
      lin(`${p}.intermediate.dense`, C, c.intermediate);
      lin(`${p}.output.dense`, c.intermediate, C);
      s.set(`${p}.output.LayerNorm.weight`, [C]).set(`${p}.output.LayerNorm.bias`, [C]);
    }
    if (task === 'masked-lm') {
      lin('lm_head.dense', C, C);
      s.set('lm_head.layer_norm.weight', [C]).set('lm_head.layer_norm.bias', [C]).set('lm_head.bias', [c.vocabSize]);
      if (raw.tie_word_embeddings === false) s.set('lm_head.decoder.weight', [c.vocabSize, C]);
    } else {
      lin('classifier.dense', C, C);
      lin('classifier.out_proj', C, c.numLabels || 2);
    }
  }
  return s;
}

export interface RandomModelOptions {
  seed?: number;
  task?: Task;
  /**
   * 'normal' (default): HF's N(0, initializer_range) position table.
   * 'sinusoidal': the Transformer's sin/cos table at the same RMS, in the
   * same learned parameter (the checkpoint stays a plain HF one). Its rows
   * for positions t and t + k are related by a fixed rotation, so attention
   * to a neighbour is linear in them from the first step; an encoder has no
   * causal mask to tell positions apart and must otherwise learn them from
   * noise before it can read context.
   */
  positionInit?: 'normal' | 'sinusoidal';
}
const RANDOM_KEYS = optionKeys<RandomModelOptions>()(['seed', 'task', 'positionInit']);

/** the sin/cos table [n, C] scaled to RMS `std`; row r is position r (RoBERTa's real positions start at pad + 1, which only shifts the phases) */
function sinusoidal(n: number, C: number, std: number): Float32Array {
  const out = new Float32Array(n * C);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < C / 2; i++) {
      const a = t / 10000 ** ((2 * i) / C);
      // RMS of sin and cos over a row is 1/√2
      out[t * C + 2 * i] = Math.SQRT2 * std * Math.sin(a);
      if (2 * i + 1 < C) out[t * C + 2 * i + 1] = Math.SQRT2 * std * Math.cos(a);
    }
  }
  return out;
}

/** A random model of a config.json object (e.g. GPT-2-small: n_embd 768, n_layer 12, n_head 12, vocab_size 50257). */
export function randomModel(configJson: Record<string, unknown>, opts: RandomModelOptions = {}): Model {
  checkOptions('randomModel', opts, RANDOM_KEYS);
  if (opts.positionInit !== undefined && !['normal', 'sinusoidal'].includes(opts.positionInit)) throw new OptionsError('randomModel', 'positionInit', `must be "normal" or "sinusoidal", got ${describeValue(opts.positionInit)}`);
  const config = parseConfig(configJson, 'config');
  const rng = new Rng(opts.seed ?? 0);
  const std = typeof configJson.initializer_range === 'number' ? configJson.initializer_range : 0.02;
  const tensors = new Map<string, { t: RawTensor; file: string }>();
  const task = opts.task ?? (config.modelType === 'roberta' ? 'masked-lm' : 'causal-lm');
  if (task === 'masked-lm' && config.modelType !== 'roberta') throw new Error(`random init: task "masked-lm" needs model_type roberta, not ${config.modelType}`);
  if (task === 'causal-lm' && config.modelType === 'roberta') throw new Error('random init: RoBERTa is an encoder; use task "masked-lm" or "seq-cls"');
  for (const [name, shape] of shapesOf(configJson, task)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/(ln_\d|ln_f|norm)\.weight$/i.test(name)) data = new Float32Array(n).fill(1);
    else if (name.endsWith('.bias')) data = new Float32Array(n);
    else data = rng.normal(n, /c_proj\.weight$/.test(name) ? std / Math.sqrt(2 * config.layers) : std);
    // drawn and then replaced, so that every other tensor is the one the same seed gives without it
    if (opts.positionInit === 'sinusoidal' && /(position_embeddings|wpe)\.weight$/.test(name)) data = sinusoidal(shape[0]!, shape[1]!, std);
    // HF's _init_weights zeroes an nn.Embedding's padding_idx row (RoBERTa's word and position tables)
    if (config.modelType === 'roberta' && /(word|position)_embeddings\.weight$/.test(name) && config.padTokenId !== null) data.fill(0, config.padTokenId * shape[1], (config.padTokenId + 1) * shape[1]);
    tensors.set(name, { t: { dtype: 'F32', shape, data }, file: '(random init)' });
  }
  const store = new WeightStore(tensors, '(random init)');
  if (task === 'seq-cls' && !config.numLabels) config.numLabels = 2;
  const score = () => tf.tensor2d(rng.normal(config.numLabels * config.hidden, std), [config.numLabels, config.hidden]);
  if (config.modelType === 'roberta') return new Roberta(config, store, undefined, task as RobertaTask);
  return config.modelType === 'gpt2' ? new GPT2(config, store, task, task === 'seq-cls' ? { score: score() } : undefined)
    : new Llama(config, store, task, task === 'seq-cls' ? { score: score() } : undefined);
}
