import { existsSync, statSync } from 'node:fs';
import { readConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { GPT2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Roberta } from './roberta.js';
import type { Model } from './types.js';
import { WeightStore } from './weights.js';

/** Load a Hugging Face folder (config.json + model.safetensors or a sharded index). */
export function loadModelFromDir(dir: string): Model {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CheckpointError(dir, 'is not a folder (expected a Hugging Face model folder with config.json)');
  const config = readConfig(dir);
  const weights = WeightStore.fromDir(dir);
  switch (config.modelType) {
    case 'gpt2': return new GPT2(config, weights);
    case 'roberta': return new Roberta(config, weights);
    case 'llama': return new Llama(config, weights);
  }
}
