import { checkOptions, optionKeys } from '../util/options.js';
import type { ResolveOptions } from '../hub/hub.js';
import { LOAD_KEYS, loadModelFromDir, type LoadOptions } from './load.js';
import { resolveModelDir } from './resolve.js';
import type { Model } from './types.js';

export { CheckpointError } from '../util/errors.js';
export { parseConfig, readConfig } from './config.js';
export { Linear } from './linear.js';
export { parseSafetensors, readSafetensors, serializeSafetensors } from './safetensors.js';
export type { Family, ForwardInput, ForwardOutput, IdsLike, Model, ModelConfig, Task } from './types.js';
export { GPT2 } from './gpt2.js';
export { Roberta } from './roberta.js';
export { Llama } from './llama.js';
export { loadModelFromDir };

type HubOptions = Pick<ResolveOptions, 'cacheDir' | 'revision' | 'offline' | 'endpoint' | 'token' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'maxFileBytes'>;
const HUB_KEYS = optionKeys<HubOptions>()(['cacheDir', 'revision', 'offline', 'endpoint', 'token', 'connectTimeoutMs', 'idleTimeoutMs', 'maxFileBytes']);

/**
 * Load a Hugging Face checkpoint: a local folder, a model embedded in this
 * package (`sharelora-gpt2-mini`, from any working directory), or a Hub id
 * (`gpt2`, `org/name`) fetched into the standard HF cache (read offline once
 * cached). Anything else is a ModelNotFoundError listing the embedded names.
 * @example const model = await loadModel('sharelora-gpt2-mini');
 */
export async function loadModel(dirOrId: string, opts: LoadOptions & HubOptions = {}): Promise<Model> {
  checkOptions('loadModel', opts, [...LOAD_KEYS, ...HUB_KEYS]);
  // the resolver's options stay out of the loader's, which checks its own
  const { cacheDir, revision, offline, endpoint, token, connectTimeoutMs, idleTimeoutMs, maxFileBytes, ...load } = opts;
  const hub = { cacheDir, revision, offline, endpoint, token, connectTimeoutMs, idleTimeoutMs, maxFileBytes };
  return loadModelFromDir(await resolveModelDir(dirOrId, hub), load);
}
export { generate, type GenerateOptions } from './generate.js';
export { saveModel } from './save.js';
export type { LoadOptions } from './load.js';
export { Param, type WeightRef } from './param.js';
export { randomModel } from './init.js';
export { EMBEDDED_DIR, embeddedModels, loadTokenizer, localModelDir, ModelNotFoundError, resolveModelDir } from './resolve.js';
export { maskedLmLoss } from './heads.js';
export type { RobertaTask } from './roberta.js';
