/**
 * Label spaces and numbers read from data files: a stray label, a huge label,
 * a hex-looking score or a reserved column name must be a DataError that
 * names the file and the line, never a silently different task or a crash.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DataError, readGlue, readHfDataset } from '../../src/data/index.js';
import { tempDir } from './paths.js';

function textFile(name: string, text: string): string {
  const file = join(tempDir('labels'), name);
  writeFileSync(file, text);
  return file;
}

async function dataError(p: Promise<unknown>, file: string, location: string | undefined, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.equal(e.location, location);
    assert.match(e.message, pattern);
    return true;
  });
}

const csv = (labels: string[]) => `text,label\n${labels.map((l, i) => `row ${i},${l}`).join('\n')}\n`;

describe('label spaces', () => {
  it('a label of 1e9 is refused at once instead of allocating a billion class names', async () => {
    const file = textFile('huge.csv', csv(['0', '1', '1000000000']));
    const t0 = performance.now();
    await dataError(readHfDataset(file), file, 'line 4', /label 1000000000 in "label" would make 1000000001 classes, over the 100000-class limit/);
    assert.ok(performance.now() - t0 < 2000);
  });

  it('a single stray label in a binary data set is refused, naming the line and value', async () => {
    const file = textFile('stray.csv', csv(['0', '1', '0', '7', '1']));
    await dataError(readHfDataset(file), file, 'line 5', /label 7 in "label" leaves class 2 without any example \(classes seen: 0, 1, 7\); .*pass numLabels: 8/);
    const jsonl = textFile('stray.jsonl', ['{"text":"a","label":1}', '{"text":"b","label":2}'].join('\n'));
    await dataError(readHfDataset(jsonl), jsonl, 'line 1', /label 1 in "label" leaves class 0 without any example/);
  });

  it('numLabels states the label space: gaps are then fine, labels beyond it are not', async () => {
    const file = textFile('stated.csv', csv(['0', '1', '0', '7', '1']));
    const { task, table } = await readHfDataset(file, { numLabels: 8 });
    assert.equal(task.labelNames!.length, 8);
    assert.deepEqual(table.array('label'), [0, 1, 0, 7, 1]);
    await dataError(readHfDataset(file, { numLabels: 2 }), file, 'line 5', /unknown label "7" in "label"; expected -1 \(unlabelled\) or 0\.\.1/);
    await assert.rejects(readHfDataset(file, { numLabels: 0 }), /RangeError: numLabels must be an integer from 1 to 100000, got 0/);
    await assert.rejects(readHfDataset(file, { numLabels: 3, labelNames: ['a', 'b'] }), /numLabels is 3 but labelNames gives 2 class names/);
    // -1 (unlabelled) never counts as a class
    assert.deepEqual((await readHfDataset(textFile('test.csv', csv(['-1', '-1'])))).task.labelNames, []);
  });

  it('numbers are plain decimals: "0x3", "Infinity" and "" are not labels', async () => {
    const stsb = textFile('stsb.csv', 'sentence1,sentence2,label\na,b,3.8\nc,d,0x3\n');
    await dataError(readHfDataset(stsb), stsb, 'line 3', /label field "label" is string "0x3"; expected a decimal number/);
    const cls = textFile('cls.csv', csv(['0', '0x1']));
    await dataError(readHfDataset(cls), cls, 'line 3', /label field "label" is string "0x1"; expected a class index or name/);
    const inf = textFile('inf.csv', csv(['0', 'Infinity']));
    await dataError(readHfDataset(inf), inf, 'line 3', /is string "Infinity"/);
    const ok = await readHfDataset(textFile('ok.csv', 'sentence1,sentence2,label\na,b, 3.80 \nc,d,1e0\n'));
    assert.deepEqual(ok.table.array('label'), [3.8, 1]);
  });

  it('GLUE STS-B reads scores as plain decimals', () => {
    const dir = join(tempDir('glue'), 'STS-B');
    mkdirSync(dir);
    const file = join(dir, 'train.tsv');
    writeFileSync(file, 'index\tsentence1\tsentence2\tscore\n0\tA plane.\tAn air plane.\t0x3\n');
    assert.throws(() => readGlue(dir, 'stsb', 'train'), (e: unknown) => e instanceof DataError && e.file === file && e.location === 'line 2' && /column "score" = "0x3"; expected a similarity score from 0 to 5/.test(e.message));
    writeFileSync(file, 'index\tsentence1\tsentence2\tscore\n0\tA plane.\tAn air plane.\t3.800\n');
    assert.deepEqual(readGlue(dir, 'stsb', 'train').table.array('label'), [3.8]);
  });
});

describe('column names', () => {
  it('a "__proto__" column is a DataError in CSV, JSON Lines and Parquet', async () => {
    const c = textFile('p.csv', 'text,__proto__,label\nhello,x,0\nworld,y,1\n');
    await dataError(readHfDataset(c), c, undefined, /column "__proto__" cannot be a table column .*rename the column/);
    const j = textFile('p.jsonl', '{"text":"a","__proto__":"x","label":0}\n');
    await dataError(readHfDataset(j), j, undefined, /column "__proto__" cannot be a table column/);
    const p = join(tempDir('labels'), 'p.parquet');
    writeFileSync(p, new Uint8Array(parquetWriteBuffer({ columnData: [
      { name: 'text', data: ['a', 'b'], type: 'STRING' }, { name: '__proto__', data: ['x', 'y'], type: 'STRING' }, { name: 'label', data: [0n, 1n], type: 'INT64' },
    ] })));
    await dataError(readHfDataset(p), p, undefined, /column "__proto__" cannot be a table column/);
  });

  it('columns named like Object.prototype members are ordinary columns', async () => {
    const p = join(tempDir('labels'), 'c.parquet');
    writeFileSync(p, new Uint8Array(parquetWriteBuffer({ columnData: [
      { name: 'text', data: ['a', 'b'], type: 'STRING' }, { name: 'constructor', data: ['x', 'y'], type: 'STRING' }, { name: 'label', data: [0n, 1n], type: 'INT64' },
    ] })));
    const { table } = await readHfDataset(p, { textFields: ['text'] });
    assert.deepEqual(table.array('constructor'), ['x', 'y']);
    // a later row that lacks the column must not read the inherited Object.prototype.constructor
    const j = textFile('c.jsonl', '{"text":"a","constructor":"x","label":0}\n{"text":"b","label":1}\n');
    await dataError(readHfDataset(j), j, 'line 2', /missing field "constructor"/);
    const dup = textFile('dup.csv', 'text,label,text\na,0,b\n');
    await dataError(readHfDataset(dup), dup, undefined, /column "text" appears twice/);
  });
});

describe('values of other types', () => {
  it('an INT64 (bigint) column named as a text field is a DataError, not a TypeError from JSON.stringify', async () => {
    const p = join(tempDir('labels'), 'int.parquet');
    writeFileSync(p, new Uint8Array(parquetWriteBuffer({ columnData: [
      { name: 'text', data: ['a', 'b'], type: 'STRING' }, { name: 'n', data: [5n, 6n], type: 'INT64' }, { name: 'label', data: [0n, 1n], type: 'INT64' },
    ] })));
    await dataError(readHfDataset(p, { textFields: ['n'] }), p, 'row 1', /field "n" is bigint 5; expected a string/);
  });
});
