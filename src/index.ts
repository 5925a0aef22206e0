/**
 * sharelora: ShareLoRA (arXiv 2406.10785) on TensorFlow.js.
 * @example
 *   await useBackend();
 *   const model = await loadModel('path/to/hf-folder');
 *   const adapter = injectShareLoRA(model, { r: 8, alpha: 16, targets: ['q', 'v'], share: 'A' });
 *   const trainer = new Trainer(model, adapter, { lr: 1e-3 });
 *   trainer.step({ inputIds, attentionMask, labels });
 */
import * as tf from '@tensorflow/tfjs-core';
export { tf };
export { useBackend, backendInfo, BackendUnavailable, type BackendInfo, type BackendName } from './backend/index.js';
export * from './models/index.js';
export * from './adapters/index.js';
export * from './train/index.js';
export { SaveError } from './util/save-error.js';
export { plot, table, display, progressBar, Figure, closeBrowser } from './notebook/index.js';
export {
  datasets, DataError, transferPairs, saveTokenizer, gpt2Tokenizer, TextTokenizer,
  collateClassification, collateCausalLM, collateMaskedLM, maskedLmTokens, pretrainingCorpus, encodeCausal, padCausal, packSequences, blocksToBatch, bucketByLength, taskBatches, toTensors,
  readGlue, readHfDataset, readE2E, readAlpaca, resolveModelPath, IGNORE_INDEX,
  type TaskData, type TaskInfo,
} from './data/index.js';
export * from './analysis/index.js';
