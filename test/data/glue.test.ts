import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataError, GLUE_TASKS, readGlue, type GlueSplit, type GlueTask } from '../../src/data/index.js';
import { GLUE_DIR, tempDir } from './paths.js';

/** [task, split, rows, first text, first label] as read from test/data/fixtures/glue. */
const CASES: Array<[GlueTask, GlueSplit, number, string, number]> = [
  ['sst2', 'train', 7, 'hide new secretions from the parental units ', 0],
  ['sst2', 'validation', 2, "it 's a charming and often affecting journey . ", 1],
  ['cola', 'train', 4, "Our friends won't buy this analysis, let alone the next one we propose.", 1],
  ['cola', 'dev', 2, 'The sailors rode the breeze clear of the rocks.', 1],
  ['mrpc', 'train', 2, 'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .', 1],
  ['stsb', 'train', 2, 'A plane is taking off.', 5],
  ['qqp', 'train', 2, 'How is the life of a math student? Could you describe your own experiences?', 0],
  ['mnli', 'train', 2, 'Conceptually cream skimming has two basic dimensions - product and geography.', 1],
  ['mnli', 'dev_matched', 2, 'The new rights are nice enough', 1],
  ['qnli', 'dev', 2, 'What came into force after the new constitution was herald?', 0],
  ['rte', 'train', 2, 'No Weapons of Mass Destruction Found in Iraq Yet.', 1],
  ['wnli', 'train', 4, 'I stuck a pin through a carrot. When I pulled the pin out, it had a hole.', 1],
];

describe('readGlue on the distribution layout', () => {
  for (const [task, split, n, text, label] of CASES) {
    it(`${task}/${split}`, () => {
      const { table, task: info } = readGlue(GLUE_DIR, task, split);
      assert.equal(table.numRows(), n);
      const spec = GLUE_TASKS[task];
      assert.deepEqual(info.textFields, spec.text.map(([, c]) => c));
      assert.deepEqual(table.columnNames(), [...info.textFields, 'label', 'idx']);
      assert.equal(table.get(info.textFields[0]!, 0), text);
      assert.equal(table.get('label', 0), label);
      assert.deepEqual(table.array('idx'), Array.from({ length: n }, (_, i) => i));
      assert.equal(info.kind, task === 'stsb' ? 'regression' : 'classification');
      assert.ok(info.metrics.length > 0);
    });
  }

  it('keeps quote characters as text (GLUE is QUOTE_NONE)', () => {
    const { table } = readGlue(GLUE_DIR, 'mrpc', 'train');
    assert.match(table.get('sentence2', 0) as string, /" the witness "/);
  });

  it('strips the byte-order mark MRPC starts with', () => {
    assert.equal(readGlue(GLUE_DIR, 'mrpc', 'train').table.get('label', 1), 0);
  });

  it('reads the second sentence of pair tasks', () => {
    const { table } = readGlue(GLUE_DIR, 'mnli', 'dev_matched');
    assert.equal(table.get('hypothesis', 1), 'The Government Executive articles housed on the website are not able to be searched.');
    assert.deepEqual(table.array('label'), [1, 2]);
  });

  it('marks test rows unlabelled with -1', () => {
    for (const [task, split] of [['sst2', 'test'], ['cola', 'test'], ['mrpc', 'test'], ['stsb', 'test'], ['mnli', 'test']] as const) {
      const { table } = readGlue(GLUE_DIR, task, split);
      assert.ok(table.numRows() > 0);
      assert.ok((table.array('label') as number[]).every((v) => v === -1), `${task}/${split}`);
    }
  });

  it('accepts the task folder itself', () => {
    assert.equal(readGlue(join(GLUE_DIR, 'RTE'), 'rte', 'train').table.numRows(), 2);
  });
});

describe('readGlue errors name the file and the line', () => {
  function write(task: string, file: string, text: string): string {
    const dir = tempDir('glue');
    mkdirSync(join(dir, task));
    writeFileSync(join(dir, task, file), text);
    return dir;
  }

  it('unknown label', () => {
    const dir = write('RTE', 'train.tsv', 'index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tcontradiction\n');
    assert.throws(() => readGlue(dir, 'rte', 'train'), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.file, join(dir, 'RTE', 'train.tsv'));
      assert.equal(e.location, 'line 3');
      assert.match(e.message, /unknown label "contradiction".*entailment/);
      return true;
    });
  });

  it('missing column lists the header', () => {
    const dir = write('SST-2', 'train.tsv', 'text\tlabel\nfine\t1\n');
    assert.throws(() => readGlue(dir, 'sst2', 'train'), /SST-2\/train\.tsv \(line 1\): missing column "sentence"; the header has \["text","label"\]/);
  });

  it('empty split', () => {
    const dir = write('QNLI', 'dev.tsv', 'index\tquestion\tsentence\tlabel\n');
    assert.throws(() => readGlue(dir, 'qnli', 'dev'), /QNLI\/dev\.tsv: empty split/);
  });

  it('wrong field count', () => {
    const dir = write('QQP', 'train.tsv', 'id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tq1\t0\n');
    assert.throws(() => readGlue(dir, 'qqp', 'train'), /\(line 2\): expected 6 fields, found 5/);
  });

  it('STS-B score out of range', () => {
    const dir = write('STS-B', 'dev.tsv', 'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tg\tf\ty\to\ts\ts\ta\tb\t7.5\n');
    assert.throws(() => readGlue(dir, 'stsb', 'dev'), /\(line 2\): column "score" = "7.5"; expected a similarity score from 0 to 5/);
  });

  it('missing split file', () => {
    assert.throws(() => readGlue(GLUE_DIR, 'rte', 'dev'), (e: unknown) => e instanceof DataError && /RTE\/dev\.tsv/.test(e.file));
  });
});
