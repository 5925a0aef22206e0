import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { checkOptions, optionKeys } from '../util/options.js';
import { Rng } from '../util/rng.js';
import { readConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { GPT2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Roberta } from './roberta.js';
import type { Model, Task } from './types.js';
import { WeightStore } from './weights.js';

export interface LoadOptions {
  /** 'seq-cls' puts a classification head on a GPT-2/LLaMA LM checkpoint (HF's *ForSequenceClassification) */
  task?: Task;
  /** labels of a new classification head (default: the config's num_labels, else 2) */
  numLabels?: number;
  /** seed of a new head's N(0, initializer_range) init */
  seed?: number;
}

export const LOAD_KEYS = optionKeys<LoadOptions>()(['task', 'numLabels', 'seed']);

const SEQ_CLS = /ForSequenceClassification$/;

/** Load a Hugging Face folder (config.json + model.safetensors or a sharded index). */
export function loadModelFromDir(dir: string, opts: LoadOptions = {}): Model {
  checkOptions('loadModel', opts, LOAD_KEYS);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CheckpointError(dir, 'is not a folder (expected a Hugging Face model folder with config.json)');
  const config = readConfig(dir);
  const archs = (config.raw.architectures as string[] | undefined) ?? [];
  const task: Task = opts.task ?? (config.modelType === 'roberta' || archs.some((a) => SEQ_CLS.test(a)) ? 'seq-cls' : 'causal-lm');
  if (task === 'causal-lm' && config.modelType === 'roberta') throw new CheckpointError(dir, 'RoBERTa is loaded as a sequence classifier (task "seq-cls"); masked-LM heads are not supported');
  if (opts.numLabels !== undefined) config.numLabels = opts.numLabels;
  else if (task === 'seq-cls' && !config.numLabels) config.numLabels = 2;
  const weights = WeightStore.fromDir(dir);
  // A head the checkpoint lacks starts as HF would: N(0, initializer_range), zero bias.
  const rng = new Rng(opts.seed ?? 0);
  const std = typeof config.raw.initializer_range === 'number' ? config.raw.initializer_range : 0.02;
  const fresh = (rows: number, cols: number) => {
    // sized from config.json alone, so a hostile config could ask for any amount of memory
    if (rows * cols > weights.numel()) throw new CheckpointError(join(dir, 'config.json'), `a new ${rows}×${cols} head would be larger than the whole checkpoint (check hidden_size and num_labels)`);
    return weights.track(tf.tensor2d(rng.normal(rows * cols, std), [rows, cols]));
  };
  const C = config.hidden;
  const score = () => (task === 'seq-cls' && !weights.has('score.weight') ? fresh(config.numLabels, C) : undefined);
  try {
    switch (config.modelType) {
      case 'gpt2': return new GPT2(config, weights, task, { score: score() });
      case 'llama': return new Llama(config, weights, task, { score: score() });
      case 'roberta': {
        const hasHead = weights.has('classifier.out_proj.weight') && opts.numLabels === undefined;
        return new Roberta(config, weights, hasHead ? undefined : {
          classifier: {
            'classifier.dense.weight': fresh(C, C), 'classifier.dense.bias': weights.track(tf.zeros([C])),
            'classifier.out_proj.weight': fresh(config.numLabels, C), 'classifier.out_proj.bias': weights.track(tf.zeros([config.numLabels])),
          },
        });
      }
    }
  } catch (e) {
    // a checkpoint that does not fit its config must not leave the tensors read so far behind
    weights.disposeTaken();
    throw e;
  }
}
