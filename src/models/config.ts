/** config.json -> ModelConfig, with errors that name the file and field. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from './errors.js';
import type { Family, ModelConfig } from './types.js';

const ARCHS: Record<string, Family> = {
  GPT2LMHeadModel: 'gpt2', GPT2ForSequenceClassification: 'gpt2', GPT2Model: 'gpt2',
  RobertaForSequenceClassification: 'roberta', RobertaForMaskedLM: 'roberta', RobertaModel: 'roberta',
  LlamaForCausalLM: 'llama', LlamaForSequenceClassification: 'llama', LlamaModel: 'llama',
};

export function readConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(file, `cannot read config.json (${(e as Error).message})`);
  }
  return parseConfig(raw, file);
}

export function parseConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(file, 'config is not a JSON object');
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (modelType !== 'gpt2' && modelType !== 'roberta' && modelType !== 'llama') {
    throw new CheckpointError(file, `model_type ${JSON.stringify(modelType)} is not supported (expected "gpt2", "roberta" or "llama")`);
  }
  const archs = Array.isArray(c.architectures) ? (c.architectures as unknown[]) : [];
  for (const a of archs) {
    if (typeof a === 'string' && ARCHS[a] && ARCHS[a] !== modelType) throw new CheckpointError(file, `architectures lists ${a} but model_type is "${modelType}"`);
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new CheckpointError(file, `field "${key}" must be a positive integer, got ${JSON.stringify(c[key])}`);
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(file, `field "${key}" must be a number, got ${JSON.stringify(c[key])}`);
    return v;
  };
  const numLabels = (): number => {
    if (c.num_labels !== undefined) return int('num_labels');
    if (c.id2label && typeof c.id2label === 'object') return Object.keys(c.id2label).length;
    return 2;
  };
  const pad = typeof c.pad_token_id === 'number' ? c.pad_token_id : null;
  if (modelType === 'gpt2') {
    const hidden = int('n_embd'); const heads = int('n_head');
    if (hidden % heads) throw new CheckpointError(file, `n_embd ${hidden} is not divisible by n_head ${heads}`);
    return {
      modelType, vocabSize: int('vocab_size'), hidden, layers: int('n_layer'), heads, kvHeads: heads, headDim: hidden / heads,
      intermediate: typeof c.n_inner === 'number' ? int('n_inner') : 4 * hidden, maxPositions: int('n_positions'),
      eps: num('layer_norm_epsilon', 1e-5), activation: String(c.activation_function ?? 'gelu_new'), numLabels: c.num_labels !== undefined || c.id2label ? numLabels() : 0,
      padTokenId: pad, ropeTheta: 0, tieWordEmbeddings: c.tie_word_embeddings !== false, raw: c,
    };
  }
  if (modelType === 'roberta') {
    const hidden = int('hidden_size'); const heads = int('num_attention_heads');
    if (hidden % heads) throw new CheckpointError(file, `hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
    return {
      modelType, vocabSize: int('vocab_size'), hidden, layers: int('num_hidden_layers'), heads, kvHeads: heads, headDim: hidden / heads,
      intermediate: int('intermediate_size'), maxPositions: int('max_position_embeddings'), eps: num('layer_norm_eps', 1e-12),
      activation: String(c.hidden_act ?? 'gelu'), numLabels: numLabels(), padTokenId: pad ?? 1, ropeTheta: 0,
      tieWordEmbeddings: false, raw: c,
    };
  }
  const hidden = int('hidden_size'); const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads) throw new CheckpointError(file, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const rope = (c.rope_parameters ?? c.rope_scaling) as Record<string, unknown> | null | undefined;
  const ropeType = rope && typeof rope === 'object' ? (rope.rope_type ?? rope.type ?? 'default') : 'default';
  if (ropeType !== 'default') throw new CheckpointError(file, `rope type ${JSON.stringify(ropeType)} is not supported (only "default")`);
  const theta = typeof c.rope_theta === 'number' ? c.rope_theta : (rope && typeof rope.rope_theta === 'number' ? rope.rope_theta : 10000);
  return {
    modelType, vocabSize: int('vocab_size'), hidden, layers: int('num_hidden_layers'), heads, kvHeads,
    headDim: typeof c.head_dim === 'number' ? int('head_dim') : hidden / heads, intermediate: int('intermediate_size'),
    maxPositions: int('max_position_embeddings', 2048), eps: num('rms_norm_eps', 1e-6), activation: String(c.hidden_act ?? 'silu'),
    numLabels: c.num_labels !== undefined || c.id2label ? numLabels() : 0, padTokenId: pad, ropeTheta: theta, tieWordEmbeddings: c.tie_word_embeddings === true, raw: c,
  };
}
