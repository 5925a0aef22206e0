/**
 * sharelora: ShareLoRA (arXiv 2406.10785) on TensorFlow.js.
 *
 * The public API, named one by one so that what a user can rely on is a
 * decision rather than whatever a module happens to export. Lower layers
 * (BLEU's tokenizer, t/beta distributions, safetensors writers, PEFT key
 * names) stay importable from their modules under `sharelora/internal/…`,
 * with no promise of stability.
 * @example
 *   await useBackend();
 *   const model = await loadModel('sharelora-gpt2-mini', { task: 'seq-cls', numLabels: 2 });
 *   const adapter = injectShareLoRA(model, { r: 8, alpha: 16, targets: ['c_attn'], share: 'A' });
 *   const trainer = new Trainer(model, adapter, { lr: 1e-3 });
 *   await trainer.step({ inputIds, attentionMask, labels });
 */
import * as tf from '@tensorflow/tfjs-core';

// backend
export { tf };
export { useBackend, backendInfo, BackendUnavailable, type BackendInfo, type BackendName } from './backend/index.js';

// models
export {
  loadModel, loadModelFromDir, saveModel, randomModel, generate, loadTokenizer, embeddedModels, readSafetensors,
  GPT2, Roberta, Llama, ModelNotFoundError, CheckpointError,
  type GenerateOptions, type LoadOptions, type Model, type ModelConfig, type Family, type Task, type ForwardInput, type ForwardOutput, type IdsLike,
} from './models/index.js';

// the method
export {
  injectShareLoRA, ShareLoraAdapter, loadAdapter, saveAdapter, fullFineTune, FullFineTune,
  countParameters, parameterTable, paperTable, PAPER_SHAPES, SHARES, METHODS, AdapterConfig, AdapterConfigError, AdapterUnloadedError,
  type Method, type Share, type ShareLoraOptions, type LoadAdapterOptions, type AccountingRow, type ArchShape, type TableOptions,
} from './adapters/index.js';

// training and evaluation
export {
  Trainer, AdamW, lossAndGrads, evalLoss, accuracy, f1, pearson, bleu, corpusBleu, rougeL,
  runGrid, gridConfigs, gridCacheStatus, summarizeGrid, meanStd, startWorker, requestStop, runProtocol, holm,
  TrainingInterrupted, NonFiniteError, BatchError, OptionsError, LockError,
  type TrainerOptions, type OptimizerSpec, type FitOptions, type EvalResult, type StepRecord, type TrainerCallbacks, type Batch, type LossAndGrads,
  type AdamWOptions, type ScheduleName, type BleuOptions, type BleuResult, type RougeResult, type RougeScore,
  type GridCacheEntry, type GridConfig, type GridFunction, type GridOptions, type GridRunInfo, type GridSpace, type SummarizeOptions,
  type QueueOptions, type RecipeContext, type RecipeSpec, type GridWorker, type WorkerOptions,
} from './train/index.js';
export type { TrainerState } from './train/trainer.js';
export { SaveError } from './util/save-error.js';

// data
export {
  datasets, DataError, transferPairs, readGlue, readHfDataset, readE2E, readAlpaca, pretrainingCorpus,
  TextTokenizer, gpt2Tokenizer, saveTokenizer,
  collateClassification, collateCausalLM, collateMaskedLM, maskedHeadRows, taskBatches, packSequences, blocksToBatch, bucketByLength, toTensors, IGNORE_INDEX,
  type TaskData, type TaskInfo,
} from './data/index.js';

// statistics for results tables
export {
  summarize, compare, meanCI, pairedTTest, wilcoxonSignedRank, bootstrapCI,
  type ComparisonOptions, type SummaryOptions, type MeanCI, type PairedTTest, type WilcoxonResult, type BootstrapCI, type BootstrapOptions,
  subspaceSimilarity, cosineSimilarity, linearCKA, lowRankSimilarity, adapterSimilarity, meanOffDiagonal,
  type MatrixLike, type SubspaceOptions, type LowRankFactors, type LowRankOptions, type ModuleSimilarity, type SimilarityMatrices,
} from './analysis/index.js';

// notebook display
export { plot, table, display, progressBar, Figure, closeBrowser, provenance, type Provenance, type ProvenanceOptions } from './notebook/index.js';
