/**
 * Options are checked: every public options object refuses a key it does
 * not know, naming the key and the closest valid one, before doing any work.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as aq from 'arquero';
import { injectShareLoRA } from '../src/adapters/sharelora.js';
import { loadAdapter } from '../src/adapters/peft.js';
import { useBackend, BackendUnavailable } from '../src/backend/index.js';
import { bucketByLength, collateCausalLM, collateClassification, datasets, encodeCausal, gpt2Tokenizer, padCausal, padRows, taskBatches } from '../src/data/index.js';
import { loadModel } from '../src/models/index.js';
import { generate } from '../src/models/generate.js';
import { loadModelFromDir } from '../src/models/load.js';
import type { Model } from '../src/models/types.js';
import * as plot from '../src/notebook/plot.js';
import { progressBar } from '../src/notebook/progress.js';
import { runGrid } from '../src/train/grid.js';
import { checkQueueOptions } from '../src/train/queue/client.js';
import { readRecipe } from '../src/train/queue/recipe.js';
import { startWorker } from '../src/train/queue/worker.js';
import { collateMaskedLM } from '../src/data/collate.js';
import { pretrainingCorpus } from '../src/data/pretraining.js';
import { paperTable, parameterTable } from '../src/adapters/accounting.js';
import { bootstrapCI, meanCI, pairedTTest, wilcoxonSignedRank } from '../src/analysis/stats.js';
import { compare, summarize } from '../src/analysis/tables.js';
import { Trainer } from '../src/train/trainer.js';
import { checkOptions, closest, editDistance, OptionsError } from '../src/util/options.js';
import { FIXTURES, testBackend } from './helpers.js';

/** f must throw an OptionsError for `key` whose message suggests `near` */
async function rejectsKey(f: () => unknown, where: string, key: string, near: string): Promise<void> {
  await assert.rejects(async () => f(), (e: Error) => {
    assert.ok(e instanceof OptionsError, `${where}: expected OptionsError, got ${e.name}: ${e.message}`);
    assert.equal(e.where, where);
    assert.equal(e.field, key);
    assert.ok(e.message.includes(`"${key}"`) && e.message.includes(`did you mean "${near}"`), e.message);
    return true;
  });
}

describe('checkOptions and closest', () => {
  it('edit distance is Levenshtein, case-insensitive; closest picks the nearest, ties to the first listed', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('LR', 'lr'), 0);
    assert.equal(editDistance('', 'abc'), 3);
    // abbreviations and snake_case, the usual spellings from other libraries
    assert.equal(closest('learningRate', ['betas', 'eps', 'weightDecay', 'warmupRatio', 'lr']), 'lr');
    assert.equal(closest('max_grad_norm', ['maxGradNorm', 'seed']), 'maxGradNorm');
    assert.equal(closest('wieghtDecay', ['lr', 'weightDecay']), 'weightDecay');
    assert.equal(closest('x', []), undefined);
  });

  it('undefined and plain objects of known keys pass; anything else is an OptionsError', () => {
    checkOptions('f', undefined, ['a']);
    checkOptions('f', { a: 1 }, ['a']);
    checkOptions('f', Object.create(null), ['a']);
    // an object literal from another vm context (a notebook kernel may evaluate cells in one)
    checkOptions('f', runInNewContext('({ a: 1 })'), ['a']);
    assert.throws(() => checkOptions('f', { a: 1, bb: 2 }, ['a', 'b']), /f: option "bb" is not an option; did you mean "b"\? \(valid: a, b\)/);
    for (const bad of [null, 3, 'lr', [1], new Date()]) assert.throws(() => checkOptions('f', bad, ['a']), OptionsError);
  });
});

describe('every public options object refuses unknown keys', () => {
  let model: Model, lm: Model;
  const tok = gpt2Tokenizer();
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
    lm = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
  });

  it('the Trainer, its nested optimizer block and callbacks, fit, and resume', async () => {
    const ad = injectShareLoRA(model, { r: 2 });
    try {
      await rejectsKey(() => new Trainer(model, ad, { learningRate: 1e-2 } as never), 'Trainer', 'learningRate', 'lr');
      await rejectsKey(() => new Trainer(model, ad, { sheduel: 'linear' } as never), 'Trainer', 'sheduel', 'schedule');
      await rejectsKey(() => new Trainer(model, ad, { optimizer: { name: 'adamw', lrr: 1 } } as never), 'Trainer: optimizer', 'lrr', 'lr');
      await rejectsKey(() => new Trainer(model, ad, { callbacks: [{ onstep: () => undefined }] } as never), 'Trainer: callbacks[0]', 'onstep', 'onStep');
      const tr = new Trainer(model, ad);
      const batch = { inputIds: [[0, 5, 6]], labels: [1] };
      await rejectsKey(() => tr.fit({ train: [batch], epoch: 3 } as never), 'trainer.fit', 'epoch', 'epochs');
      await rejectsKey(() => Trainer.resume('/nonexistent', model, { trainables: ad } as never), 'Trainer.resume', 'trainables', 'trainable');
      tr.dispose();
    } finally {
      ad.unload();
    }
  });

  it('adapters and models: injectShareLoRA, adapter.save, loadAdapter, loadModel, generate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sl-opts-'));
    const tensors = tf.memory().numTensors;
    try {
      await rejectsKey(() => injectShareLoRA(model, { rank: 4 } as never), 'injectShareLoRA', 'rank', 'r');
      assert.ok([...model.linears.values()].every((l) => !l.lora), 'nothing was injected');
      assert.equal(tf.memory().numTensors, tensors);
      const ad = injectShareLoRA(model, { r: 2 });
      await rejectsKey(() => ad.save(dir, { base_model: 'x' } as never), 'adapter.save', 'base_model', 'baseModel');
      await ad.save(dir);
      ad.unload();
      await rejectsKey(() => loadAdapter(model, dir, { sed: 1 } as never), 'loadAdapter', 'sed', 'seed');
      await rejectsKey(() => loadModel(join(FIXTURES, 'roberta', 'model'), { numLabel: 3 } as never), 'loadModel', 'numLabel', 'numLabels');
      await rejectsKey(() => loadModelFromDir(join(FIXTURES, 'roberta', 'model'), { tsk: 'seq-cls' } as never), 'loadModel', 'tsk', 'task');
      await rejectsKey(() => generate(lm, [[5]], { maxTokens: 3 } as never), 'generate', 'maxTokens', 'maxNewTokens');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plots, grids and the progress bar', async () => {
    const t = { step: [1, 2], loss: [2, 1] };
    await rejectsKey(() => plot.line([1, 2], { titel: 'x' } as never), 'plot.line', 'titel', 'title');
    await rejectsKey(() => plot.scatter([1, 2], { logy: true } as never), 'plot.scatter', 'logy', 'logY');
    await rejectsKey(() => plot.bar({ a: 1 }, { widht: 3 } as never), 'plot.bar', 'widht', 'width');
    await rejectsKey(() => plot.heatmap([[1]], { colorScale: 'x' } as never), 'plot.heatmap', 'colorScale', 'colorscale');
    await rejectsKey(() => plot.history(t, { ytitle: 'x' } as never), 'plot.history', 'ytitle', 'yTitle');
    await rejectsKey(() => plot.save(plot.line([1, 2]), join(tmpdir(), 'x.html'), { scal: 2 } as never), 'plot.save', 'scal', 'scale');
    let ran = 0;
    await rejectsKey(() => runGrid({ r: [1] }, () => { ran++; }, { onerror: 'record' } as never), 'runGrid', 'onerror', 'onError');
    assert.equal(ran, 0, 'no run started');
    await rejectsKey(() => progressBar({ printevery: 2 } as never), 'progressBar', 'printevery', 'printEvery');
  });

  it('collation and data set loaders', async () => {
    await rejectsKey(() => padRows([[1]], 0, { padToMultiple: 8 } as never), 'padRows', 'padToMultiple', 'padToMultipleOf');
    await rejectsKey(() => collateClassification(tok, ['a'], [0], { maxLenght: 8 } as never), 'collateClassification', 'maxLenght', 'maxLength');
    await rejectsKey(() => collateCausalLM(tok, ['a'], { maskPrompts: false } as never), 'collateCausalLM', 'maskPrompts', 'maskPrompt');
    await rejectsKey(() => encodeCausal(tok, 'a', { appendEOS: false } as never), 'encodeCausal', 'appendEOS', 'appendEos');
    await rejectsKey(() => padCausal([{ ids: [1], labels: [1] }], 0, { pad_to: 4 } as never), 'padCausal', 'pad_to', 'padTo');
    await rejectsKey(() => bucketByLength([1, 2], 1, { shufle: false } as never), 'bucketByLength', 'shufle', 'shuffle');
    await rejectsKey(() => datasets.imdb({ splt: 'test' } as never), 'imdb', 'splt', 'split');
    await rejectsKey(() => datasets.sotu({ limt: 3 } as never), 'sotu', 'limt', 'limit');
    await rejectsKey(() => datasets.mobyDick({ sed: 3 } as never), 'mobyDick', 'sed', 'seed');
    await rejectsKey(() => datasets.spamAssassin({ group: ['spam-1'] } as never), 'spamAssassin', 'group', 'groups');
    await rejectsKey(() => datasets.brown({ windows: 2 } as never), 'brown', 'windows', 'window');
    await rejectsKey(() => datasets.wordnetSupersense({ pos: 'noun', post: 1 } as never), 'wordnetSupersense', 'post', 'pos');
    await rejectsKey(() => datasets.wordnetDefinitions({ partOfSpeech: ['noun'] } as never), 'wordnetDefinitions', 'partOfSpeech', 'pos');
    await rejectsKey(() => datasets.hf('x.jsonl', { labelfield: 'y' } as never), 'readHfDataset', 'labelfield', 'labelField');
    const data = await datasets.imdb({ limit: 2 });
    await rejectsKey(() => taskBatches(data, tok, { batchSize: 2, maxLen: 8 } as never), 'taskBatches', 'maxLen', 'maxLength');
    // the internal calls still pass only what the pad functions take
    assert.equal(taskBatches(data, tok, { batchSize: 2, maxLength: 8, padToMultipleOf: 4 })[0].inputIds[0].length, 8);
  });

  it('the queue, masked-LM collation, the pretraining corpus, parameter tables and statistics (one checker, one error class)', async () => {
    await rejectsKey(() => checkQueueOptions({ url: 'redis://h', atempts: 2 }), 'runGrid queue', 'atempts', 'attempts');
    await rejectsKey(() => readRecipe({ module: 'r.mjs', exprt: 'run' } as never), 'runGrid recipe', 'exprt', 'export');
    await rejectsKey(() => startWorker({ queue: 'redis://h', concurency: 2 } as never), 'worker', 'concurency', 'concurrency');
    await rejectsKey(() => collateMaskedLM([[0, 5, 2]], { maskId: 4, vocabSize: 9, padId: 1, seed: 0, specialIds: [0, 1, 2], maskFraktion: 0.8 } as never), 'collateMaskedLM', 'maskFraktion', 'maskFraction');
    await rejectsKey(() => pretrainingCorpus({ sourcse: ['brown'] } as never), 'pretrainingCorpus', 'sourcse', 'sources');
    await rejectsKey(() => parameterTable('roberta-base', { r: 8, targets: ['q'], variant: ['LoRA'] } as never), 'parameterTable', 'variant', 'variants');
    await rejectsKey(() => paperTable({ sharegroups: 2 } as never), 'paperTable', 'sharegroups', 'shareGroups');
    await rejectsKey(() => meanCI([1, 2], { levle: 0.9 } as never), 'meanCI', 'levle', 'level');
    await rejectsKey(() => pairedTTest([1, 2], [2, 3], { alternate: 'less' } as never), 'pairedTTest', 'alternate', 'alternative');
    await rejectsKey(() => wilcoxonSignedRank([1, 2], [2, 3], { alternate: 'less' } as never), 'wilcoxonSignedRank', 'alternate', 'alternative');
    await rejectsKey(() => bootstrapCI([1, 2], () => 1, { resample: 10 } as never), 'bootstrapCI', 'resample', 'resamples');
    const t = aq.table({ share: ['A', 'B'], acc: [1, 2] });
    await rejectsKey(() => summarize(t, { by: 'share', value: 'acc', levl: 0.9 } as never), 'summarize', 'levl', 'level');
    await rejectsKey(() => compare(t, { by: 'share', baseline: 'A', value: 'acc', pair: 'seed' } as never), 'compare', 'pair', 'pairBy');
    // a TypeError, as the checkers it replaced threw
    assert.throws(() => meanCI([1, 2], { levle: 0.9 } as never), TypeError);
  });

  it('useBackend names the closest backend and never reaches Object.prototype', async () => {
    await assert.rejects(useBackend('webgpuu'), (e: Error) => e instanceof BackendUnavailable && /did you mean "webgpu"/.test(e.message));
    await assert.rejects(useBackend('constructor'), (e: Error) => e instanceof BackendUnavailable && /unknown backend name/.test(e.message));
  });
});
