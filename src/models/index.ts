import { existsSync } from 'node:fs';
import { checkOptions, optionKeys } from '../util/options.js';
import type { ResolveOptions } from '../data/hub.js';
import { LOAD_KEYS, loadModelFromDir, type LoadOptions } from './load.js';
import type { Model } from './types.js';

export { CheckpointError } from './errors.js';
export { parseConfig, readConfig } from './config.js';
export { Linear } from './linear.js';
export { parseSafetensors, readSafetensors, serializeSafetensors } from './safetensors.js';
export type { Family, ForwardInput, ForwardOutput, IdsLike, Model, ModelConfig, Task } from './types.js';
export { GPT2 } from './gpt2.js';
export { Roberta } from './roberta.js';
export { Llama } from './llama.js';
export { loadModelFromDir };

const HUB_KEYS = optionKeys<Pick<ResolveOptions, 'cacheDir' | 'revision' | 'offline'>>()(['cacheDir', 'revision', 'offline']);

/**
 * Load a Hugging Face checkpoint: a local folder, or a Hub id (`gpt2`,
 * `org/name`) fetched into the standard HF cache (read offline once cached).
 * @example const model = await loadModel('data/sharelora-gpt2-mini');
 */
export async function loadModel(dirOrId: string, opts: LoadOptions & { cacheDir?: string; revision?: string; offline?: boolean } = {}): Promise<Model> {
  checkOptions('loadModel', opts, [...LOAD_KEYS, ...HUB_KEYS]);
  const { cacheDir, revision, offline, ...load } = opts;
  if (existsSync(dirOrId)) return loadModelFromDir(dirOrId, load);
  const { resolveModelPath } = await import('../data/hub.js');
  return loadModelFromDir(await resolveModelPath(dirOrId, { cacheDir, revision, offline }), load);
}
export { generate, type GenerateOptions } from './generate.js';
export { saveModel } from './save.js';
export type { LoadOptions } from './load.js';
export { Param, type WeightRef } from './param.js';
export { randomModel } from './init.js';
