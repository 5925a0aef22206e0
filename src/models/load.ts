import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { checkOptions, optionKeys } from '../util/options.js';
import { Rng } from '../util/rng.js';
import { readConfig } from './config.js';
import { CheckpointError } from '../util/errors.js';
import { GPT2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Roberta } from './roberta.js';
import type { Family, Model, Task } from './types.js';
import { WeightStore } from './weights.js';

export interface LoadOptions {
  /**
   * 'seq-cls' puts a classification head on a GPT-2/LLaMA LM checkpoint (HF's *ForSequenceClassification)
   * or on a RoBERTa encoder; 'masked-lm' is RoBERTa's RobertaForMaskedLM
   */
  task?: Task;
  /** labels of a new classification head (default: the config's num_labels, else 2) */
  numLabels?: number;
  /** seed of a new head's N(0, initializer_range) init */
  seed?: number;
}

export const LOAD_KEYS = optionKeys<LoadOptions>()(['task', 'numLabels', 'seed']);

const SEQ_CLS = /ForSequenceClassification$/;
const TASKS: readonly Task[] = ['causal-lm', 'seq-cls', 'masked-lm'];

/**
 * Tensors a checkpoint may hold that no module here reads, as transformers
 * drops them too: old persistent buffers (attention masks, rotary
 * frequencies, position ids), RoBERTa's pooler, and the head of the other
 * task (an LM checkpoint's lm_head under a classifier, and back). Anything
 * else unread means config.json describes less than the file holds.
 */
function ignorable(family: Family, tiedLmHead: boolean, freshClassifier: boolean): RegExp {
  switch (family) {
    case 'gpt2': return new RegExp(`^(?:transformer\\.)?h\\.\\d+\\.attn\\.(?:masked_)?bias$|^score\\.weight$${tiedLmHead ? '|^lm_head\\.weight$' : ''}`);
    case 'llama': return /(?:^|\.)rotary_emb\.inv_freq$|^lm_head\.weight$|^score\.weight$/;
    case 'roberta': return new RegExp(`^roberta\\.pooler\\.|^lm_head\\.|^roberta\\.embeddings\\.(?:position_ids|token_type_ids)$${freshClassifier ? '|^classifier\\.' : ''}`);
  }
}

const LAYERS_FIELD: Record<Family, string> = { gpt2: 'n_layer', roberta: 'num_hidden_layers', llama: 'num_hidden_layers' };

/** Refuse a checkpoint whose tensors the model did not all read, naming them. */
function refuseUnused(model: Model, weights: WeightStore, freshClassifier: boolean): void {
  const unused = weights.unused(ignorable(model.family, model.config.tieWordEmbeddings, freshClassifier));
  if (!unused.length) return;
  const L = model.config.layers;
  const beyond = unused.map((u) => /(?:^|\.)(?:h|layer|layers)\.(\d+)\./.exec(u.name)).filter((m) => m && Number(m[1]) >= L).map((m) => Number(m![1]));
  const hint = beyond.length
    ? ` (config.json's ${LAYERS_FIELD[model.family]} is ${L}, but the checkpoint holds ${Math.max(...beyond) + 1} layers)`
    : model.family === 'gpt2' && unused.some((u) => u.name === 'lm_head.weight') ? ' (an untied lm_head: this GPT-2 ties the LM head to wte)' : ' (config.json does not describe this checkpoint?)';
  const names = unused.slice(0, 5).map((u) => `"${u.name}"`).join(', ');
  throw new CheckpointError(unused[0].file, `${unused.length} tensor(s) are not used by this ${model.family} model: ${names}${unused.length > 5 ? ` and ${unused.length - 5} more` : ''}${hint}`);
}

/** Load a Hugging Face folder (config.json + model.safetensors or a sharded index). */
export function loadModelFromDir(dir: string, opts: LoadOptions = {}): Model {
  checkOptions('loadModel', opts, LOAD_KEYS);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CheckpointError(dir, 'is not a folder (expected a Hugging Face model folder with config.json)');
  const config = readConfig(dir);
  const archs = (config.raw.architectures as string[] | undefined) ?? [];
  if (opts.task !== undefined && !TASKS.includes(opts.task)) throw new CheckpointError(dir, `task ${JSON.stringify(opts.task)} is not one of ${TASKS.join(', ')}`);
  const task: Task = opts.task ?? (archs.includes('RobertaForMaskedLM') ? 'masked-lm' : config.modelType === 'roberta' || archs.some((a) => SEQ_CLS.test(a)) ? 'seq-cls' : 'causal-lm');
  if (task === 'causal-lm' && config.modelType === 'roberta') throw new CheckpointError(dir, 'RoBERTa is an encoder: load it with task "seq-cls" or "masked-lm"');
  if (task === 'masked-lm' && config.modelType !== 'roberta') throw new CheckpointError(dir, `task "masked-lm" needs a RoBERTa checkpoint, not ${config.modelType}`);
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
  const hasHead = config.modelType === 'roberta' && weights.has('classifier.out_proj.weight') && opts.numLabels === undefined;
  try {
    const model = build();
    refuseUnused(model, weights, config.modelType === 'roberta' && !hasHead);
    return model;
  } catch (e) {
    // a checkpoint that does not fit its config must not leave the tensors read so far behind
    weights.disposeTaken();
    throw e;
  }

  function build(): Model {
    switch (config.modelType) {
      case 'gpt2': return new GPT2(config, weights, task, { score: score() });
      case 'llama': return new Llama(config, weights, task, { score: score() });
      case 'roberta': {
        // HF builds neither task with a pooler, and each task's model has only its own head
        weights.ignore(task === 'seq-cls' ? /^(lm_head|roberta\.pooler)\./ : /^(classifier|roberta\.pooler)\./);
        // a tied decoder saved anyway (older checkpoints) is re-tied by HF; so is decoder.bias, a second name of lm_head.bias
        if (task === 'masked-lm') weights.ignore(config.raw.tie_word_embeddings === false ? /^lm_head\.decoder\.bias$/ : /^lm_head\.decoder\./);
        if (task === 'masked-lm') {
          const hasLm = weights.has('lm_head.dense.weight');
          const zeros = (n: number) => weights.track(tf.zeros([n]));
          return new Roberta(config, weights, hasLm ? undefined : {
            lmHead: {
              'lm_head.dense.weight': fresh(C, C), 'lm_head.dense.bias': zeros(C), 'lm_head.layer_norm.weight': weights.track(tf.ones([C])),
              'lm_head.layer_norm.bias': zeros(C), 'lm_head.bias': zeros(config.vocabSize),
              ...(config.raw.tie_word_embeddings === false ? { 'lm_head.decoder.weight': fresh(config.vocabSize, C) } : {}),
            },
          }, 'masked-lm');
        }
        return new Roberta(config, weights, hasHead ? undefined : {
          classifier: {
            'classifier.dense.weight': fresh(C, C), 'classifier.dense.bias': weights.track(tf.zeros([C])),
            'classifier.out_proj.weight': fresh(config.numLabels, C), 'classifier.out_proj.bias': weights.track(tf.zeros([config.numLabels])),
          },
        }, 'seq-cls');
      }
    }
  }
}
