/**
 * Token ids → padded batches. Padding is on the right, attention_mask is 1 on
 * real tokens, and causal-LM labels follow transformers: labels are the input
 * ids themselves (the model shifts them), with -100 wherever no loss should be
 * taken (padding, and the prompt when `maskPrompt`).
 */
import { Rng } from '../util/rng.js';
import type { HostBatch } from './batch.js';
import type { TextTokenizer } from './tokenizer.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { IGNORE_INDEX } from '../backend/labels.js';

export { IGNORE_INDEX };

export interface PadOptions {
  /** Pad to a multiple of this (e.g. 8) so kernels see fewer distinct shapes. */
  padToMultipleOf?: number;
  /** Pad every batch to this length instead of its longest row. */
  padTo?: number;
}

const PAD_KEYS = optionKeys<PadOptions>()(['padTo', 'padToMultipleOf']);
/** the padding options out of a larger options object, for the pad functions (which refuse any other key) */
export const padOptions = (o: PadOptions): PadOptions => ({ padTo: o.padTo, padToMultipleOf: o.padToMultipleOf });

function paddedLength(lengths: number[], opts: PadOptions): number {
  let n = opts.padTo ?? Math.max(1, ...lengths);
  if (opts.padTo !== undefined && Math.max(0, ...lengths) > opts.padTo) {
    throw new RangeError(`a row has ${Math.max(...lengths)} tokens, more than padTo = ${opts.padTo}; set maxLength to truncate`);
  }
  const m = opts.padToMultipleOf;
  if (m !== undefined) {
    if (!Number.isInteger(m) || m < 1) throw new RangeError(`padToMultipleOf must be a positive integer, got ${m}`);
    n = Math.ceil(n / m) * m;
  }
  return n;
}

/** Right-pad id rows; the mask marks real tokens. */
export function padRows(rows: number[][], padId: number, opts: PadOptions = {}): { inputIds: number[][]; attentionMask: number[][] } {
  checkOptions('padRows', opts, PAD_KEYS);
  const n = paddedLength(rows.map((r) => r.length), opts);
  return {
    inputIds: rows.map((r) => [...r, ...new Array<number>(n - r.length).fill(padId)]),
    attentionMask: rows.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(n - r.length).fill(0)]),
  };
}

export interface ClassificationCollateOptions extends PadOptions {
  /** Truncate each encoded row (special tokens included) to this many tokens. */
  maxLength?: number;
}

/**
 * One text or a text pair per row, one label per row (int class; a float for
 * regression is passed through unchanged).
 */
export function collateClassification(
  tokenizer: TextTokenizer,
  texts: ReadonlyArray<string | readonly [string, string]>,
  labels: readonly number[],
  opts: ClassificationCollateOptions = {},
): HostBatch {
  checkOptions('collateClassification', opts, optionKeys<ClassificationCollateOptions>()([...PAD_KEYS as Array<keyof PadOptions>, 'maxLength']));
  if (texts.length !== labels.length) throw new RangeError(`${texts.length} texts but ${labels.length} labels`);
  if (texts.length === 0) throw new RangeError('cannot collate an empty batch');
  const rows = texts.map((t) => (typeof t === 'string' ? tokenizer.encodeTruncated(t, undefined, opts.maxLength) : tokenizer.encodeTruncated(t[0], t[1], opts.maxLength)));
  return { ...padRows(rows, tokenizer.padId, padOptions(opts)), labels: [...labels] };
}

export interface CausalCollateOptions extends PadOptions {
  maxLength?: number;
  /** -100 on prompt tokens, so only the target is learned. Default true. */
  maskPrompt?: boolean;
  /** End each example with EOS so generation learns to stop. Default true. */
  appendEos?: boolean;
}

/** A plain string is all target (language modelling); `{prompt, target}` is instruction / data-to-text style. */
export type CausalExample = string | { prompt: string; target: string };

/** One causal-LM row before padding. */
export interface CausalRow { ids: number[]; labels: number[] }

/**
 * Encode one causal-LM example. Truncation cuts the end of the target first; a
 * prompt that alone would fill `maxLength` loses its beginning instead, so at
 * least one target token (and the text right before it) survives.
 */
const CAUSAL_KEYS = optionKeys<CausalCollateOptions>()([...PAD_KEYS as Array<keyof PadOptions>, 'maxLength', 'maskPrompt', 'appendEos']);

export function encodeCausal(tokenizer: TextTokenizer, ex: CausalExample, opts: CausalCollateOptions = {}): CausalRow {
  checkOptions('encodeCausal', opts, CAUSAL_KEYS);
  const appendEos = opts.appendEos ?? true;
  if (appendEos && tokenizer.eosId === undefined) throw new RangeError(`${tokenizer.source} has no EOS token; pass appendEos: false`);
  const { prefix, suffix } = tokenizer.template(false);
  let prompt = typeof ex === 'string' ? [] : tokenizer.encode(ex.prompt, { addSpecialTokens: false });
  let target = tokenizer.encode(typeof ex === 'string' ? ex : ex.target, { addSpecialTokens: false });
  const end = [...suffix];
  if (appendEos && end[end.length - 1] !== tokenizer.eosId) end.push(tokenizer.eosId!);
  if (opts.maxLength !== undefined) {
    const budget = opts.maxLength - prefix.length - end.length;
    if (budget < 1) throw new RangeError(`maxLength ${opts.maxLength} leaves no room next to ${prefix.length + end.length} special tokens`);
    if (prompt.length + target.length > budget) {
      if (prompt.length >= budget) prompt = prompt.slice(prompt.length - (budget - 1));
      target = target.slice(0, budget - prompt.length);
    }
  }
  const ids = [...prefix, ...prompt, ...target, ...end];
  const masked = opts.maskPrompt ?? true ? prefix.length + prompt.length : 0;
  return { ids, labels: ids.map((id, i) => (i < masked ? IGNORE_INDEX : id)) };
}

/** Pad encoded causal rows; padded label positions are -100. */
export function padCausal(rows: readonly CausalRow[], padId: number, opts: PadOptions = {}): HostBatch {
  checkOptions('padCausal', opts, PAD_KEYS);
  if (rows.length === 0) throw new RangeError('cannot collate an empty batch');
  const padded = padRows(rows.map((r) => r.ids), padId, padOptions(opts));
  const n = padded.inputIds[0]!.length;
  return { ...padded, labels: rows.map((r) => [...r.labels, ...new Array<number>(n - r.labels.length).fill(IGNORE_INDEX)]) };
}

/** Causal-LM batch: {@link encodeCausal} each example, then {@link padCausal}. */
export function collateCausalLM(tokenizer: TextTokenizer, examples: readonly CausalExample[], opts: CausalCollateOptions = {}): HostBatch {
  checkOptions('collateCausalLM', opts, CAUSAL_KEYS);
  return padCausal(examples.map((ex) => encodeCausal(tokenizer, ex, opts)), tokenizer.padId, padOptions(opts));
}

/**
 * Concatenate documents (each followed by EOS) and cut into rows of exactly
 * `blockSize` tokens, as GPT-2 language-model fine-tuning does: no padding is
 * wasted. The last partial block is dropped.
 */
export function packSequences(docs: readonly number[][], blockSize: number, eosId: number | undefined): number[][] {
  if (!Number.isInteger(blockSize) || blockSize < 2) throw new RangeError(`blockSize must be an integer >= 2, got ${blockSize}`);
  const stream: number[] = [];
  for (const d of docs) {
    for (const id of d) stream.push(id);
    if (eosId !== undefined) stream.push(eosId);
  }
  const out: number[][] = [];
  for (let i = 0; i + blockSize <= stream.length; i += blockSize) out.push(stream.slice(i, i + blockSize));
  return out;
}

/** Full-length blocks as a causal-LM batch (mask all 1, labels = ids). */
export function blocksToBatch(blocks: readonly number[][]): HostBatch {
  if (blocks.length === 0) throw new RangeError('cannot collate an empty batch');
  return { inputIds: blocks.map((b) => [...b]), attentionMask: blocks.map((b) => b.map(() => 1)), labels: blocks.map((b) => [...b]) };
}

export interface MaskedLmOptions extends PadOptions {
  /** id of `<mask>` */
  maskId: number;
  /** ids 0..vocabSize-1 are the model's vocabulary; random replacements are drawn from them */
  vocabSize: number;
  /** never selected and never drawn as a replacement: `<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` */
  specialIds: readonly number[];
  /** fills rows shorter than the longest */
  padId: number;
  /** the same seed gives the same masks: a resumed run re-derives them from (seed, step) */
  seed: number;
  /** share of non-special tokens that are predicted; default 0.15 */
  probability?: number;
  /** of the predicted tokens, the share replaced by `<mask>` (default 0.8) and by a random token (default 0.1); the rest stay */
  maskFraction?: number;
  randomFraction?: number;
  /**
   * also give `headRows` (maskedHeadRows): the predicted positions padded to a count set by the batch's shape,
   * so that a masked LM runs its head on those rows only (the same loss; ~6× less head work at 15%)
   */
  headRows?: boolean;
}

const MLM_KEYS = optionKeys<MaskedLmOptions>()(['maskId', 'vocabSize', 'specialIds', 'padId', 'seed', 'probability', 'maskFraction', 'randomFraction', 'headRows', 'padToMultipleOf', 'padTo']);

/**
 * RoBERTa's dynamic masking (transformers' DataCollatorForLanguageModeling):
 * each non-special token is predicted with `probability`; a predicted token
 * becomes `<mask>` (80%), a random non-special token (10%) or stays (10%).
 * Labels hold the original id where predicted and -100 everywhere else,
 * padding included. Rows already carry their special tokens.
 */
export function collateMaskedLM(rows: readonly (readonly number[])[], opts: MaskedLmOptions): HostBatch {
  checkOptions('collateMaskedLM', opts, MLM_KEYS);
  const { maskId, vocabSize, padId, seed } = opts;
  const probability = opts.probability ?? 0.15, maskFraction = opts.maskFraction ?? 0.8, randomFraction = opts.randomFraction ?? 0.1;
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 2) throw new RangeError(`collateMaskedLM: vocabSize must be an integer >= 2, got ${vocabSize}`);
  for (const [k, v] of [['maskId', maskId], ['padId', padId]] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || v >= vocabSize) throw new RangeError(`collateMaskedLM: ${k} must be an id in [0, ${vocabSize}), got ${v}`);
  }
  if (!Number.isSafeInteger(seed)) throw new RangeError(`collateMaskedLM: seed must be an integer, got ${seed}`);
  for (const [k, v] of [['probability', probability], ['maskFraction', maskFraction], ['randomFraction', randomFraction]] as const) {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new RangeError(`collateMaskedLM: ${k} must be in [0, 1], got ${v}`);
  }
  if (maskFraction + randomFraction > 1) throw new RangeError(`collateMaskedLM: maskFraction + randomFraction must be at most 1, got ${maskFraction + randomFraction}`);
  if (rows.length === 0) throw new RangeError('cannot collate an empty batch');
  const special = new Set([...opts.specialIds, maskId, padId]);
  const drawable: number[] = [];
  for (let i = 0; i < vocabSize; i++) if (!special.has(i)) drawable.push(i);
  if (drawable.length === 0) throw new RangeError('collateMaskedLM: every id is special; nothing to draw random replacements from');
  const rng = new Rng(seed);
  const padded = padRows(rows.map((r) => [...r]), padId, padOptions(opts));
  const labels = padded.inputIds.map((r) => new Array<number>(r.length).fill(IGNORE_INDEX));
  padded.inputIds.forEach((row, b) => {
    const n = rows[b]!.length;
    for (let t = 0; t < n; t++) {
      const id = row[t]!;
      if (!Number.isSafeInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`collateMaskedLM: row ${b} position ${t} holds ${id}, not an id in [0, ${vocabSize})`);
      if (special.has(id) || rng.next() >= probability) continue;
      labels[b]![t] = id;
      const u = rng.next();
      if (u < maskFraction) row[t] = maskId;
      else if (u < maskFraction + randomFraction) row[t] = drawable[Math.floor(rng.next() * drawable.length)]!;
    }
  });
  if (opts.headRows !== undefined && typeof opts.headRows !== 'boolean') throw new TypeError(`collateMaskedLM: headRows must be true or false, got ${JSON.stringify(opts.headRows)}`);
  const headRows = opts.headRows ? maskedHeadRows(labels, probability) : undefined;
  return { ...padded, labels, ...(headRows ? { headRows } : {}) };
}

/**
 * A masked-LM batch's labelled positions (row · T + column) as a batch's
 * `headRows`, padded with its first unlabelled positions (distinct rows: the
 * gather's gradient adds into none twice) to a count that depends on the
 * shape [B, T] alone: the mean plus six standard deviations of the binomial
 * count of B·T positions each predicted with `probability`, rounded up to a
 * multiple of 64. Every step of a fixed-shape run then has the same shapes,
 * which step replay needs. Undefined when the batch has more (p ≈ 1e-9 at
 * 64 × 256: the head then runs on every position, with the same loss).
 */
export function maskedHeadRows(labels: readonly (readonly number[])[], probability: number): Int32Array | undefined {
  const B = labels.length, T = labels[0]?.length ?? 0, n = B * T;
  const cap = Math.min(n, 64 * Math.ceil((n * probability + 6 * Math.sqrt(n * probability * (1 - probability))) / 64));
  if (cap === 0) return undefined;
  const out = new Int32Array(cap);
  let k = 0;
  for (let r = 0; r < B; r++) {
    const row = labels[r]!;
    for (let t = 0; t < T; t++) {
      if (row[t] === IGNORE_INDEX) continue;
      if (k === cap) return undefined;
      out[k++] = r * T + t;
    }
  }
  for (let i = 0; k < cap; i++) if (labels[Math.floor(i / T)]![i % T] === IGNORE_INDEX) out[k++] = i;
  return out;
}

/** maskId, specialIds and vocabSize of a RoBERTa-style tokenizer (its `<mask>` and every added special token). */
export function maskedLmTokens(tokenizer: TextTokenizer): Pick<MaskedLmOptions, 'maskId' | 'specialIds' | 'vocabSize' | 'padId'> {
  const maskId = tokenizer.tokenToId('<mask>');
  if (maskId === undefined) throw new RangeError(`${tokenizer.source} has no <mask> token; masked-LM training needs one`);
  const specialIds = (tokenizer.json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id);
  return { maskId, specialIds, vocabSize: tokenizer.vocabSize, padId: tokenizer.padId };
}
