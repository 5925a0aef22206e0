/** config.json -> ModelConfig, with errors that name the file and field. */
import { join } from 'node:path';
import { CheckpointError, checkpointFailure } from '../util/errors.js';
import { readJsonFile } from '../util/json.js';
import { openRegularFile as openGuarded } from '../util/read-file.js';
import type { Family, ModelConfig } from './types.js';

const MAX_LABELS = 100_000;

const ARCHS: Record<string, Family> = {
  GPT2LMHeadModel: 'gpt2', GPT2ForSequenceClassification: 'gpt2', GPT2Model: 'gpt2',
  RobertaForSequenceClassification: 'roberta', RobertaForMaskedLM: 'roberta', RobertaModel: 'roberta',
  LlamaForCausalLM: 'llama', LlamaForSequenceClassification: 'llama', LlamaModel: 'llama',
};

export function readConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  return parseConfig(readJsonFile(file, 'config.json'), file);
}

/** A descriptor for a regular file only: a FIFO or device named like a checkpoint would block or stream forever. */
export function openRegularFile(file: string): number {
  return openGuarded(file, checkpointFailure);
}

/**
 * Activations each family computes, by their transformers ACT2FN names, to
 * the one we compute: 'gelu' is the exact (erf) GELU, 'gelu_new' the tanh
 * approximation (gelu_pytorch_tanh and gelu_fast are the same formula),
 * 'silu' = swish. Anything else would run with the wrong function silently.
 */
const ACTIVATIONS: Record<Family, { field: string; default: string; known: Record<string, string> }> = {
  gpt2: { field: 'activation_function', default: 'gelu_new', known: { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new' } },
  roberta: { field: 'hidden_act', default: 'gelu', known: { gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new' } },
  llama: { field: 'hidden_act', default: 'silu', known: { silu: 'silu', swish: 'silu' } },
};

function activation(c: Record<string, unknown>, family: Family, file: string): string {
  const a = ACTIVATIONS[family];
  const v = c[a.field] ?? a.default;
  const known = typeof v === 'string' && Object.hasOwn(a.known, v) ? a.known[v] : undefined;
  if (!known) throw new CheckpointError(file, `field "${a.field}" is ${JSON.stringify(v)}, which this ${family} implementation does not compute (supported: ${Object.keys(a.known).map((k) => `"${k}"`).join(', ')})`);
  return known;
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
    // every float field we read is an epsilon or a base: 0 or less would give NaN/Inf at the first forward
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new CheckpointError(file, `field "${key}" must be a positive number, got ${JSON.stringify(c[key])}`);
    return v;
  };
  const numLabels = (): number => {
    const n = c.num_labels !== undefined ? int('num_labels') : c.id2label && typeof c.id2label === 'object' ? Object.keys(c.id2label).length : 2;
    // a new head is allocated from this number alone, before any weight is checked
    if (n < 1 || n > MAX_LABELS) throw new CheckpointError(file, `num_labels/id2label give ${n} labels; expected 1 to ${MAX_LABELS}`);
    return n;
  };
  const pad = typeof c.pad_token_id === 'number' ? c.pad_token_id : null;
  if (modelType === 'gpt2') {
    const hidden = int('n_embd'); const heads = int('n_head');
    if (hidden % heads) throw new CheckpointError(file, `n_embd ${hidden} is not divisible by n_head ${heads}`);
    return {
      modelType, vocabSize: int('vocab_size'), hidden, layers: int('n_layer'), heads, kvHeads: heads, headDim: hidden / heads,
      intermediate: typeof c.n_inner === 'number' ? int('n_inner') : 4 * hidden, maxPositions: int('n_positions'),
      eps: num('layer_norm_epsilon', 1e-5), activation: activation(c, 'gpt2', file), numLabels: c.num_labels !== undefined || c.id2label ? numLabels() : 0,
      padTokenId: pad, ropeTheta: 0, tieWordEmbeddings: c.tie_word_embeddings !== false, raw: c,
    };
  }
  if (modelType === 'roberta') {
    const hidden = int('hidden_size'); const heads = int('num_attention_heads');
    if (hidden % heads) throw new CheckpointError(file, `hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
    return {
      modelType, vocabSize: int('vocab_size'), hidden, layers: int('num_hidden_layers'), heads, kvHeads: heads, headDim: hidden / heads,
      intermediate: int('intermediate_size'), maxPositions: int('max_position_embeddings'), eps: num('layer_norm_eps', 1e-12),
      activation: activation(c, 'roberta', file), numLabels: numLabels(), padTokenId: pad ?? 1, ropeTheta: 0,
      tieWordEmbeddings: false, raw: c,
    };
  }
  const hidden = int('hidden_size'); const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads) throw new CheckpointError(file, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const rope = (c.rope_parameters ?? c.rope_scaling) as Record<string, unknown> | null | undefined;
  const ropeType = rope && typeof rope === 'object' ? (rope.rope_type ?? rope.type ?? 'default') : 'default';
  if (ropeType !== 'default') throw new CheckpointError(file, `rope type ${JSON.stringify(ropeType)} is not supported (only "default")`);
  const theta = typeof c.rope_theta === 'number' ? num('rope_theta', 10000) : (rope && typeof rope.rope_theta === 'number' ? rope.rope_theta : 10000);
  if (!(theta > 0) || !Number.isFinite(theta)) throw new CheckpointError(file, `rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  if (typeof c.head_dim !== 'number' && hidden % heads) throw new CheckpointError(file, `hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
  const headDim = typeof c.head_dim === 'number' ? int('head_dim') : hidden / heads;
  if (headDim % 2) throw new CheckpointError(file, `head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  return {
    modelType, vocabSize: int('vocab_size'), hidden, layers: int('num_hidden_layers'), heads, kvHeads,
    headDim, intermediate: int('intermediate_size'),
    maxPositions: int('max_position_embeddings', 2048), eps: num('rms_norm_eps', 1e-6), activation: activation(c, 'llama', file),
    numLabels: c.num_labels !== undefined || c.id2label ? numLabels() : 0, padTokenId: pad, ropeTheta: theta, tieWordEmbeddings: c.tie_word_embeddings === true, raw: c,
  };
}
