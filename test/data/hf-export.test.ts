import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DataError, readHfDataset } from '../../src/data/index.js';
import { tempDir } from './paths.js';

const SENTENCES = ['a gorgeous , witty , seductive movie .', 'the mesmerizing performances of the leads keep the film grounded', 'like a soft drink that has gone flat'];

/** What `datasets` writes for glue/sst2: snappy pages, int64 ClassLabel, features JSON in the footer. */
function sst2Parquet(labels: bigint[], names = ['negative', 'positive']): string {
  const features = { info: { features: { sentence: { dtype: 'string', _type: 'Value' }, label: { names, _type: 'ClassLabel' }, idx: { dtype: 'int32', _type: 'Value' } } } };
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'sentence', data: SENTENCES, type: 'STRING' },
      { name: 'label', data: labels, type: 'INT64' },
      { name: 'idx', data: [0, 1, 2], type: 'INT32' },
    ],
    kvMetadata: [{ key: 'huggingface', value: JSON.stringify(features) }],
  });
  const file = join(tempDir('hf'), 'validation-00000-of-00001.parquet');
  writeFileSync(file, new Uint8Array(buf));
  return file;
}

function textFile(name: string, text: string): string {
  const file = join(tempDir('hf'), name);
  writeFileSync(file, text);
  return file;
}

describe('readHfDataset', () => {
  it('Parquet: int64 labels become numbers, ClassLabel names come from the footer', async () => {
    const { table, task } = await readHfDataset(sst2Parquet([1n, 1n, 0n]));
    assert.deepEqual(table.columnNames(), ['sentence', 'label', 'idx']);
    assert.deepEqual(table.array('label'), [1, 1, 0]);
    assert.equal(table.get('sentence', 2), SENTENCES[2]);
    assert.deepEqual(task.labelNames, ['negative', 'positive']);
    assert.deepEqual(task.textFields, ['sentence']);
    assert.equal(task.kind, 'classification');
  });

  it('Parquet with the glue preset takes its metric and description', async () => {
    const { task } = await readHfDataset(sst2Parquet([1n, 0n, -1n]), { glue: 'sst2' });
    assert.equal(task.name, 'glue/sst2');
    assert.deepEqual(task.metrics, ['accuracy']);
  });

  it('Parquet: a label outside the ClassLabel names names the row', async () => {
    await assert.rejects(readHfDataset(sst2Parquet([0n, 2n, 1n])), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.location, 'row 2');
      assert.match(e.message, /unknown label 2 in "label"; expected -1 \(unlabelled\) or 0\.\.1 \(negative, positive\)/);
      return true;
    });
  });

  it('JSON Lines (to_json default) for an MNLI-style pair task', async () => {
    const file = textFile('mnli.jsonl', [
      { premise: 'The new rights are nice enough', hypothesis: 'Everyone really likes the newest benefits', label: 1, idx: 0 },
      { premise: 'This site includes a list of all award winners.', hypothesis: 'The articles are not searchable.', label: 2, idx: 1 },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const { table, task } = await readHfDataset(file, { glue: 'mnli' });
    assert.deepEqual(task.textFields, ['premise', 'hypothesis']);
    assert.deepEqual(table.array('label'), [1, 2]);
    assert.deepEqual(task.labelNames, ['entailment', 'neutral', 'contradiction']);
  });

  it('JSON Lines: a bad line is reported with its number', async () => {
    const file = textFile('bad.jsonl', '{"sentence": "ok", "label": 0}\n\n{"sentence": "broken", "label": \n');
    await assert.rejects(readHfDataset(file), /bad\.jsonl \(line 3\): invalid JSON/);
  });

  it('JSON Lines: a non-string text field', async () => {
    const file = textFile('t.jsonl', '{"sentence": "ok", "label": 0}\n{"sentence": null, "label": 1}\n');
    await assert.rejects(readHfDataset(file, { textFields: ['sentence'] }), /t\.jsonl \(line 2\): field "sentence" is null; expected a string/);
  });

  it('CSV with quoted commas and newlines; labels given by name', async () => {
    const file = textFile('train.csv', 'text,label\n"great, really great",positive\n"two\nlines ""quoted""",negative\n');
    const { table } = await readHfDataset(file, { labelNames: ['negative', 'positive'] });
    assert.deepEqual(table.array('text'), ['great, really great', 'two\nlines "quoted"']);
    assert.deepEqual(table.array('label'), [1, 0]);
  });

  it('CSV regression (STS-B export) keeps float scores', async () => {
    const file = textFile('stsb.csv', 'sentence1,sentence2,label,idx\nA plane is taking off.,An air plane is taking off.,5.0,0\nA man is playing a flute.,A man plays a large flute.,3.8,1\n');
    const { table, task } = await readHfDataset(file);
    assert.equal(task.kind, 'regression');
    assert.deepEqual(task.textFields, ['sentence1', 'sentence2']);
    assert.deepEqual(table.array('label'), [5, 3.8]);
  });

  it('generation data with a target column', async () => {
    const file = textFile('e2e.jsonl', '{"meaning_representation": "name[The Eagle], food[French]", "human_reference": "The Eagle serves French food."}\n');
    const { task } = await readHfDataset(file, { targetField: 'human_reference' });
    assert.equal(task.kind, 'generation');
    assert.deepEqual(task.textFields, ['meaning_representation']);
  });

  it('missing column, empty file, unknown extension', async () => {
    await assert.rejects(readHfDataset(textFile('a.jsonl', '{"text": "x", "label": 0}\n'), { textFields: ['sentence'] }), /missing column "sentence"; the file has \["text","label"\]/);
    await assert.rejects(readHfDataset(textFile('b.csv', 'text,label\n')), /b\.csv: empty split/);
    await assert.rejects(readHfDataset(textFile('c.arrow', '')), /unsupported extension "\.arrow"/);
    await assert.rejects(readHfDataset(textFile('d.csv', 'text,label\n"x",0,extra\n')), /d\.csv \(line 2\): expected 2 fields/);
  });
});
