import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  bucketByLength, collateCausalLM, collateClassification, datasets, gpt2Tokenizer, IGNORE_INDEX, packSequences,
  padRows, readE2E, readGlue, taskBatches, toTensors,
} from '../../src/data/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GLUE_DIR, tempDir } from './paths.js';

const tok = gpt2Tokenizer();
const EOS = 50256;

describe('causal-LM collation', () => {
  it('pads right, masks padding and (by default) the prompt', () => {
    const batch = collateCausalLM(tok, [{ prompt: 'Define whale (noun):', target: ' a large sea mammal' }, 'Call me Ishmael.']);
    const p = tok.encode('Define whale (noun):');
    const t = tok.encode(' a large sea mammal');
    const lm = tok.encode('Call me Ishmael.');
    const n = p.length + t.length + 1;
    assert.deepEqual(batch.inputIds[0], [...p, ...t, EOS]);
    assert.deepEqual(batch.labels[0], [...p.map(() => IGNORE_INDEX), ...t, EOS]);
    assert.deepEqual(batch.inputIds[1], [...lm, EOS, ...new Array(n - lm.length - 1).fill(tok.padId)]);
    assert.deepEqual(batch.attentionMask[1], [...new Array(lm.length + 1).fill(1), ...new Array(n - lm.length - 1).fill(0)]);
    assert.deepEqual(batch.labels[1], [...lm, EOS, ...new Array(n - lm.length - 1).fill(IGNORE_INDEX)]);
  });

  it('maskPrompt: false and appendEos: false', () => {
    const b = collateCausalLM(tok, [{ prompt: 'Q:', target: ' A' }], { maskPrompt: false, appendEos: false });
    assert.deepEqual(b.labels[0], b.inputIds[0]);
    assert.deepEqual(b.inputIds[0], [...tok.encode('Q:'), ...tok.encode(' A')]);
  });

  it('truncation cuts the target end, or the prompt start when the prompt alone is too long', () => {
    const prompt = 'one two three four';
    const b1 = collateCausalLM(tok, [{ prompt, target: ' five six seven eight' }], { maxLength: 7 });
    assert.deepEqual(b1.inputIds[0], [...tok.encode(prompt), ...tok.encode(' five six'), EOS]);
    const b2 = collateCausalLM(tok, [{ prompt, target: ' five' }], { maxLength: 3 });
    assert.deepEqual(b2.inputIds[0], [tok.encode(' four')[0], tok.encode(' five')[0], EOS]);
    assert.deepEqual(b2.labels[0], [IGNORE_INDEX, tok.encode(' five')[0], EOS]);
  });

  it('packs documents into full blocks', () => {
    assert.deepEqual(packSequences([[1, 2, 3], [4, 5]], 3, 0), [[1, 2, 3], [0, 4, 5]]);
    assert.throws(() => packSequences([[1]], 1, 0), /blockSize must be an integer >= 2/);
  });
});

describe('classification collation', () => {
  it('single texts and pairs, int labels, padToMultipleOf', () => {
    const b = collateClassification(tok, ['good', ['a plane', ' an airplane']], [1, 0], { padToMultipleOf: 8 });
    assert.equal(b.inputIds[0]!.length, 8);
    const pair = [...tok.encode('a plane'), ...tok.encode(' an airplane')];
    assert.deepEqual(b.inputIds[1]!.slice(0, pair.length), pair);
    assert.deepEqual(b.inputIds[0]!.slice(0, 1), tok.encode('good'));
    assert.deepEqual(b.attentionMask[0], [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(b.labels, [1, 0]);
    assert.throws(() => collateClassification(tok, ['x'], [1, 2]), /1 texts but 2 labels/);
  });

  it('padRows refuses rows longer than padTo', () => {
    assert.throws(() => padRows([[1, 2, 3]], 0, { padTo: 2 }), /more than padTo = 2/);
  });
});

describe('length bucketing', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 50 + 1);

  it('uses every row once, groups similar lengths, is seeded', () => {
    const batches = bucketByLength(lengths, 8, { seed: 3 });
    assert.deepEqual(batches.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
    const waste = (bs: number[][]) => bs.reduce((w, b) => w + b.length * Math.max(...b.map((i) => lengths[i]!)) - b.reduce((s, i) => s + lengths[i]!, 0), 0);
    const sequential = Array.from({ length: 13 }, (_, k) => lengths.map((_, i) => i).slice(k * 8, k * 8 + 8));
    assert.ok(waste(batches) < waste(sequential) / 4, `bucketed waste ${waste(batches)} vs ${waste(sequential)}`);
    assert.deepEqual(bucketByLength(lengths, 8, { seed: 3 }), batches);
    assert.notDeepEqual(bucketByLength(lengths, 8, { seed: 4 }), batches);
    assert.equal(bucketByLength(lengths, 8, { keepLast: false }).length, 12);
  });
});

describe('toTensors', () => {
  it('int32 ids, mask and labels; float32 for regression', async () => {
    await tf.setBackend('cpu');
    const batch = collateCausalLM(tok, ['Call me Ishmael.', 'Loomings']);
    const t = toTensors(batch);
    assert.deepEqual([t.inputIds.dtype, t.attentionMask.dtype, t.labels.dtype], ['int32', 'int32', 'int32']);
    assert.deepEqual(t.inputIds.shape, [2, batch.inputIds[0]!.length]);
    assert.deepEqual(await t.labels.array(), batch.labels);
    tf.dispose([t.inputIds, t.attentionMask, t.labels]);
    const r = toTensors({ inputIds: [[1]], attentionMask: [[1]], labels: [3.8] }, { labelDtype: 'float32' });
    assert.equal(r.labels.dtype, 'float32');
    assert.ok(Math.abs((await r.labels.data())[0]! - 3.8) < 1e-6);
    tf.dispose([r.inputIds, r.attentionMask, r.labels]);
    assert.throws(() => toTensors({ inputIds: [[1]], attentionMask: [[1]], labels: [3.8] }), /pass labelDtype: "float32"/);
    assert.throws(() => toTensors({ inputIds: [[1, 2], [1]], attentionMask: [[1, 1], [1]], labels: [0, 1] }), /row 1 has 1 entries/);
  });
});

describe('taskBatches', () => {
  it('classification (GLUE SST-2 fixture)', () => {
    const data = readGlue(GLUE_DIR, 'sst2', 'train');
    const batches = taskBatches(data, tok, { batchSize: 3, maxLength: 16 });
    assert.equal(batches.flatMap((b) => b.labels as number[]).length, 7);
    assert.ok(batches.every((b) => b.inputIds.every((r) => r.length <= 16)));
  });

  it('generation (E2E) masks the meaning representation', () => {
    const file = join(tempDir('batch'), 'devset.csv');
    writeFileSync(file, 'mr,ref\n"name[The Eagle], food[French]",The Eagle serves French food.\n"name[Alimentum], area[city centre]",Alimentum is in the city centre.\n');
    const [batch] = taskBatches(readE2E(file), tok, { batchSize: 2 });
    const mrIds = tok.encode('name[The Eagle], food[French]');
    const row = batch!.inputIds.findIndex((r) => r[0] === mrIds[0] && r[1] === mrIds[1]);
    assert.ok((batch!.labels[row] as number[]).slice(0, mrIds.length).every((l) => l === IGNORE_INDEX));
  });

  it('language modelling (Moby-Dick) packs full blocks', async () => {
    const data = await datasets.mobyDick({ split: 'validation', limit: 2 });
    const batches = taskBatches(data, tok, { batchSize: 4, maxLength: 64 });
    assert.ok(batches.length > 1);
    for (const b of batches) {
      assert.ok(b.inputIds.every((r) => r.length === 64));
      assert.deepEqual(b.labels, b.inputIds);
    }
  });
});
