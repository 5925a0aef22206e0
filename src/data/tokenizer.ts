/**
 * A thin, typed layer over @huggingface/tokenizers: takes a parsed
 * `tokenizer.json` and `tokenizer_config.json`, resolves the special-token
 * ids the collators need, and learns where the
 * post-processor puts its special tokens so truncation can cut the text and
 * keep `<s> … </s>` intact.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { DataError } from '../util/errors.js';

/** The parts of a `tokenizer.json` this module reads; the rest is passed through untouched. */
export interface TokenizerJson {
  model: { type: string; vocab?: Record<string, number> | Array<[string, number]>; [k: string]: unknown };
  added_tokens?: Array<{ id: number; content: string; special?: boolean; [k: string]: unknown }>;
  [k: string]: unknown;
}

/** `tokenizer_config.json`; special tokens may be strings or AddedToken objects. */
export type TokenizerConfig = Record<string, unknown>;

export interface EncodeOptions {
  /** Run the post-processor (`<s>`/`</s>`, BOS). Default true, as in transformers. */
  addSpecialTokens?: boolean;
}

/** Where the post-processor puts special tokens around one or two segments. */
interface Template { prefix: number[]; middle: number[]; suffix: number[] }

const KNOWN = {
  bos: ['<s>', '<|begin_of_text|>'],
  eos: ['</s>', '<|endoftext|>', '<|end_of_text|>'],
  pad: ['<pad>', '<|pad|>'],
  unk: ['<unk>'],
};

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export class TextTokenizer {
  private readonly hf: Tokenizer;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  /**
   * Id used to fill padding. GPT-2 and LLaMA have no pad token; they pad with
   * EOS, which is harmless because padded positions are masked out of
   * attention and carry label -100.
   */
  readonly padId: number;
  private templates?: { single: Template; pair: Template };

  constructor(readonly json: TokenizerJson, readonly config: TokenizerConfig = {}, readonly source = '(in memory)') {
    if (!json || typeof json !== 'object' || !json.model || typeof json.model.type !== 'string') {
      throw new DataError(source, 'not a tokenizer.json: expected an object with model.type');
    }
    checkTokenIds(json, source);
    try {
      this.hf = new Tokenizer(json, config);
    } catch (e) {
      throw new DataError(source, `@huggingface/tokenizers cannot load it (${(e as Error).message})`);
    }
    const vocab = this.hf.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    const find = (key: 'bos' | 'eos' | 'pad' | 'unk'): number | undefined => {
      const named = tokenContent(config[`${key}_token`]);
      if (named !== undefined) {
        const id = this.hf.token_to_id(named);
        if (id === undefined) throw new DataError(source, `${key}_token "${named}" is not in the vocabulary`);
        return id;
      }
      for (const t of KNOWN[key]) {
        const id = json.added_tokens?.find((a) => a.content === t)?.id;
        if (id !== undefined) return id;
      }
      return undefined;
    };
    this.bosId = find('bos');
    this.eosId = find('eos');
    this.unkId = find('unk');
    this.padId = find('pad') ?? this.eosId ?? this.unkId ?? 0;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** HF's pair encoding (RoBERTa: `<s> a </s></s> b </s>`; GPT-2: a then b). */
  encodePair(a: string, b: string, opts: EncodeOptions = {}): number[] {
    // @huggingface/tokenizers 0.2.0 drops the second text when a ByteLevel post-processor
    // comes last (GPT-2); that processor adds no tokens, so plain concatenation is what Rust returns.
    if (endsWithByteLevel(this.json.post_processor)) {
      return [...this.encode(a, { addSpecialTokens: false }), ...this.encode(b, { addSpecialTokens: false })];
    }
    return this.hf.encode(a, { text_pair: b, add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    // @huggingface/tokenizers rejects an empty list; generate() can answer EOS at once
    if (ids.length === 0) return '';
    // No clean-up: it rewrites " ," into "," and breaks encode/decode round trips.
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenize(text: string): string[] {
    return this.hf.tokenize(text);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /**
   * Encode one text or a pair with special tokens, truncating the text (longest
   * segment first, from its end) so the result fits `maxLength` without losing
   * the special tokens.
   */
  encodeTruncated(a: string, b?: string, maxLength?: number): number[] {
    const t = this.template(b !== undefined);
    let ida = this.encode(a, { addSpecialTokens: false });
    let idb = b === undefined ? [] : this.encode(b, { addSpecialTokens: false });
    if (maxLength !== undefined) {
      const budget = maxLength - t.prefix.length - t.middle.length - t.suffix.length;
      if (budget < (b === undefined ? 1 : 2)) {
        throw new RangeError(`maxLength ${maxLength} leaves no room for text next to ${maxLength - budget} special tokens`);
      }
      if (ida.length + idb.length > budget) {
        // Longest-first, as transformers' truncation="longest_first".
        let na = ida.length;
        let nb = idb.length;
        while (na + nb > budget) {
          if (na >= nb) na--;
          else nb--;
        }
        ida = ida.slice(0, na);
        idb = idb.slice(0, nb);
      }
    }
    return b === undefined ? [...t.prefix, ...ida, ...t.suffix] : [...t.prefix, ...ida, ...t.middle, ...idb, ...t.suffix];
  }

  /** Special tokens before / after the text (e.g. LLaMA's BOS; RoBERTa's `<s>` and `</s>`). */
  template(pair = false): Template {
    this.templates ??= { single: this.probe(false), pair: this.probe(true) };
    return pair ? this.templates.pair : this.templates.single;
  }

  private probe(pair: boolean): Template {
    // Encode probes with and without the post-processor and find where the plain ids sit.
    const a = this.encode('hello', { addSpecialTokens: false });
    const b = this.encode('world', { addSpecialTokens: false });
    const full = pair ? this.encodePair('hello', 'world') : this.encode('hello');
    const ia = indexOf(full, a, 0);
    const ib = pair ? indexOf(full, b, ia + a.length) : ia + a.length;
    if (ia < 0 || ib < 0) throw new DataError(this.source, 'cannot locate the text inside the post-processed encoding; unsupported post_processor');
    return pair
      ? { prefix: full.slice(0, ia), middle: full.slice(ia + a.length, ib), suffix: full.slice(ib + b.length) }
      : { prefix: full.slice(0, ia), middle: [], suffix: full.slice(ia + a.length) };
  }
}

/** Ids index embedding rows; no real vocabulary comes near 2^24 (LLaMA 3: 128,256). */
export const MAX_TOKEN_ID = 2 ** 24;

/**
 * Every id must be a non-negative integer below MAX_TOKEN_ID, and the ids
 * must roughly fill 0..max: the tokenizer library allocates and walks an
 * array up to the largest id (an id of 1e9 spins for a minute, 4e9 forever),
 * and the model needs an embedding row for every id up to it.
 */
function checkTokenIds(json: TokenizerJson, source: string): void {
  const ids = new Set<number>();
  let max = -1;
  let maxAt = '';
  const check = (id: unknown, at: string) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_TOKEN_ID) {
      throw new DataError(source, `${at} is ${JSON.stringify(id) ?? String(id)}; expected a token id, an integer from 0 to ${MAX_TOKEN_ID - 1}`);
    }
    ids.add(id);
    if (id > max) [max, maxAt] = [id, at];
  };
  const vocab: unknown = json.model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs, the id is the position
    if (vocab.length > MAX_TOKEN_ID) throw new DataError(source, `model.vocab has ${vocab.length} entries; expected at most ${MAX_TOKEN_ID}`);
    vocab.forEach((e, i) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') throw new DataError(source, `model.vocab[${i}] is ${JSON.stringify(e)?.slice(0, 60)}; expected [piece, score]`);
      check(i, `model.vocab[${i}]`);
    });
    if (json.model.unk_id !== undefined && json.model.unk_id !== null) {
      const unk = json.model.unk_id;
      if (typeof unk !== 'number' || !Number.isInteger(unk) || unk < 0 || unk >= vocab.length) throw new DataError(source, `model.unk_id is ${JSON.stringify(unk)}; expected an index into model.vocab (0 to ${vocab.length - 1})`);
    }
  } else if (vocab !== undefined) {
    if (vocab === null || typeof vocab !== 'object') throw new DataError(source, `model.vocab is ${JSON.stringify(vocab)}; expected an object {token: id}`);
    for (const [token, id] of Object.entries(vocab)) check(id, `model.vocab[${JSON.stringify(token)}]`);
  }
  const added: unknown = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new DataError(source, 'added_tokens is not a list; expected [{id, content, ...}]');
    added.forEach((t, i) => {
      if (t === null || typeof t !== 'object' || typeof (t as { content?: unknown }).content !== 'string') throw new DataError(source, `added_tokens[${i}] is ${JSON.stringify(t)?.slice(0, 60)}; expected {id, content: string, ...}`);
      check((t as { id?: unknown }).id, `added_tokens[${i}].id`);
    });
  }
  // a few reserved holes are real (and harmless); an id space mostly empty is a corrupt file
  const unused = max + 1 - ids.size;
  if (unused > Math.max(ids.size, 1024)) {
    throw new DataError(source, `${maxAt} is ${max}, but only ${ids.size} ids are used: ${unused} ids below it would be empty; expected ids that run from 0 up to about the number of tokens`);
  }
}

function endsWithByteLevel(pp: unknown): boolean {
  const p = pp as { type?: string; processors?: unknown[] } | null | undefined;
  if (!p) return false;
  if (p.type === 'Sequence' && Array.isArray(p.processors)) return endsWithByteLevel(p.processors[p.processors.length - 1]);
  return p.type === 'ByteLevel';
}

function indexOf(hay: number[], needle: number[], from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
